"""The deployment files checked against the code, without Docker or a cluster:
`Dockerfile`, `.dockerignore`, `compose.yaml` and `deploy/k8s/` must agree with
`kit.config` (ports, variable names, defaults) and with each other (commands,
probes, labels, references)."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.settings import GatewaySettings
from kit.config import GATEWAY_PORT, METRICS_PORTS, SERVICE_PORTS, ServiceSettings, service_address
from kit.server import LIVENESS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "deploy" / "k8s"
NAMESPACE = "klik"
SERVICES = tuple(SERVICE_PORTS)
PROCESSES = (*SERVICES, "gateway")
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


# ---- small helpers: typed access to parsed YAML -------------------------------------


def _map(value: object, what: str) -> dict[str, Any]:
    assert isinstance(value, dict), f"{what}: expected a mapping, got {value!r}"
    return value


def _list(value: object, what: str) -> list[Any]:
    assert isinstance(value, list), f"{what}: expected a list, got {value!r}"
    return value


def _module(process: str) -> str:
    return "gateway" if process == "gateway" else f"services.{process}"


def _endpoints(address: str) -> list[tuple[str, int]]:
    """(host, port) of each replica in a `KLIK_<SERVICE>_ADDR` value: `host:port`, a
    comma-separated list, or a `dns:///host:port` gRPC target."""
    result = []
    for item in address.split(","):
        item = item.strip()
        if item.startswith("dns:"):
            item = item.rsplit("/", 1)[-1]
        host, _, port = item.rpartition(":")
        result.append((host, int(port)))
    return result


def _database_name(url: str) -> str:
    parts = urlsplit(url)
    assert parts.scheme == "postgresql+psycopg", url
    return parts.path.lstrip("/")


@cache
def _known_variables() -> frozenset[str]:
    """Every `KLIK_*` name the code reads, found in its source: quoted literals
    ("KLIK_NATS_URL") and `prefix + "_PORT"` where `prefix = f"KLIK_{x.upper()}"`,
    expanded for each service."""
    literal = re.compile(r"""["'](KLIK_[A-Z0-9_]+)["']""")
    prefix_def = re.compile(r"""(\w+)\s*=\s*f["']KLIK_\{\w+\.upper\(\)\}["']""")
    suffix = re.compile(r"""(\w+)\s*\+\s*["'](_[A-Z0-9_]+)["']""")
    names: set[str] = set()
    sources = [p for d in ("kit", "gateway", "services") for p in (ROOT / d).rglob("*.py")]
    for source in sources:
        text = source.read_text()
        names.update(literal.findall(text))
        prefixes = set(prefix_def.findall(text))
        for variable, tail in suffix.findall(text):
            if variable in prefixes:
                names.update(f"KLIK_{service.upper()}{tail}" for service in SERVICE_PORTS)
    return frozenset(names)


# ---- compose.yaml --------------------------------------------------------------------


@cache
def _compose() -> dict[str, Any]:
    return _map(yaml.safe_load(COMPOSE.read_text()), "compose.yaml")


def _compose_service(name: str) -> dict[str, Any]:
    services = _map(_compose().get("services"), "services")
    assert name in services, f"compose.yaml has no service {name!r}"
    return _map(services[name], name)


def _compose_env(name: str) -> dict[str, str]:
    raw = _compose_service(name).get("environment", {})
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {key: value for key, _, value in pairs}
    return {str(k): "" if v is None else str(v) for k, v in _map(raw, name).items()}


def _healthcheck(name: str) -> dict[str, Any]:
    return _map(_compose_service(name).get("healthcheck"), f"{name} healthcheck")


def _healthcheck_argv(name: str) -> list[str]:
    check = _healthcheck(name)
    assert not check.get("disable"), f"{name}: healthcheck disabled"
    test = check.get("test")
    if isinstance(test, str):  # a plain string runs in a shell, like CMD-SHELL
        return shlex.split(test)
    kind, *rest = _list(test, f"{name} healthcheck test")
    if kind == "CMD":
        return [str(arg) for arg in rest]
    assert kind == "CMD-SHELL", f"{name}: healthcheck test {test!r}"
    return shlex.split(rest[0])


def _depends_on(name: str) -> dict[str, str]:
    """Dependency -> condition, whichever syntax the file uses."""
    raw = _compose_service(name).get("depends_on", {})
    if isinstance(raw, list):
        return {str(dep): "service_started" for dep in raw}
    return {
        str(dep): str(_map(spec, f"{name} depends_on {dep}").get("condition", "service_started"))
        for dep, spec in _map(raw, f"{name} depends_on").items()
    }


def _duration_seconds(value: object) -> float:
    """A compose duration: `20s`, `1m30s`, `500ms`, `1h` (a bare number is seconds)."""
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"bad duration {value!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def test_compose_follows_the_compose_spec_and_has_every_process() -> None:
    assert "version" not in _compose(), "the Compose spec has no `version:`"
    services = set(_map(_compose().get("services"), "services"))
    assert {"postgres", "nats", *PROCESSES} <= services


@pytest.mark.parametrize("process", PROCESSES)
def test_compose_runs_the_right_module_from_the_repo_image(process: str) -> None:
    spec = _compose_service(process)
    module = _module(process)
    assert spec.get("command") == ["python", "-m", module]
    assert importlib.util.find_spec(f"{module}.__main__") is not None, module
    build = spec.get("build")
    context = build if isinstance(build, str) else _map(build, "build").get("context")
    assert context == ".", f"{process}: must be built from the repository's Dockerfile"
    assert "entrypoint" not in spec


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_listens_on_all_interfaces_with_its_own_database(service: str) -> None:
    env = _compose_env(service)
    settings = ServiceSettings.from_env(service, env)
    assert settings.host == "0.0.0.0", "a container must bind every interface"
    assert settings.port == SERVICE_PORTS[service]
    assert settings.metrics_port in (0, METRICS_PORTS[service])
    own = f"KLIK_{service.upper()}_DATABASE_URL"
    assert own in env, f"{service} would fall back to SQLite inside the container"
    assert _database_name(settings.database_url) == f"klik_{service}"
    others = {f"KLIK_{o.upper()}_DATABASE_URL" for o in SERVICES if o != service}
    assert not others & set(env), f"{service} must not see another service's database"
    url = urlsplit(settings.database_url)
    postgres = _map(_compose_service("postgres").get("environment"), "postgres environment")
    assert url.hostname == "postgres"
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert urlsplit(settings.nats_url).hostname == "nats"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_healthcheck_probes_its_own_port(service: str) -> None:
    port = ServiceSettings.from_env(service, _compose_env(service)).port
    assert _healthcheck_argv(service) == ["python", "-m", "kit", "health", f"127.0.0.1:{port}"]


def test_compose_gateway_listens_publishes_and_checks_readiness() -> None:
    settings = GatewaySettings.from_env(_compose_env("gateway"))
    assert settings.host == "0.0.0.0"
    assert settings.port == GATEWAY_PORT
    published = [str(p) for p in _list(_compose_service("gateway").get("ports"), "ports")]
    assert published and all(p.split(":")[-1] == str(settings.port) for p in published)
    argv = _healthcheck_argv("gateway")
    assert argv[:2] == ["python", "-c"] and "urllib.request" in argv[2]
    assert re.search(rf"http://127\.0\.0\.1:{settings.port}/(readyz|healthz)\b", argv[2])


@pytest.mark.parametrize("process", PROCESSES)
def test_compose_addresses_name_a_service_running_that_module_on_its_port(process: str) -> None:
    env = _compose_env(process)
    targets = [s for s in SERVICES if f"KLIK_{s.upper()}_ADDR" in env]
    if process == "gateway":
        assert targets == list(SERVICES), "the gateway needs every KLIK_<SERVICE>_ADDR"
    for target in targets:
        for host, port in _endpoints(service_address(target, env)):
            assert _compose_service(host).get("command") == ["python", "-m", _module(target)]
            assert port == ServiceSettings.from_env(target, _compose_env(host)).port


def test_compose_dependencies_exist_and_are_healthy_when_they_must_be() -> None:
    services = _map(_compose().get("services"), "services")
    for name in services:
        for dep, condition in _depends_on(name).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if condition == "service_healthy":
                assert _healthcheck_argv(dep), f"{name} waits for {dep}, which has no healthcheck"
    for service in SERVICES:
        assert _depends_on(service).get("postgres") == "service_healthy"
        assert _depends_on(service).get("nats") == "service_healthy"
    gateway = _depends_on("gateway")
    assert all(gateway.get(service) == "service_healthy" for service in SERVICES)


def _volume_target(mount: object) -> tuple[str, str, bool]:
    """(source, target, read_only) of a compose short-syntax volume."""
    source, target, *mode = str(mount).split(":")
    return source, target, mode == ["ro"]


def test_compose_keys_service_creates_every_identity_before_the_services_start() -> None:
    keys = _compose_service("keys")
    assert keys["command"] == ["python", "-m", "kit", "keys", "/var/lib/klik/keys", *SERVICES]
    assert keys.get("restart") == "no", "a one-shot job must not be restarted"
    ((source, target, read_only),) = [_volume_target(v) for v in keys["volumes"]]
    assert (target, read_only) == ("/var/lib/klik/keys", False)
    for service in SERVICES:
        assert _depends_on(service).get("keys") == "service_completed_successfully"
        settings = ServiceSettings.from_env(service, _compose_env(service))
        mounts = [_volume_target(v) for v in _compose_service(service).get("volumes", [])]
        assert (source, str(settings.service_keys_dir), True) in mounts, service


@pytest.mark.parametrize("name", ["postgres", "nats", *PROCESSES])
def test_compose_every_container_has_a_healthcheck(name: str) -> None:
    assert _healthcheck_argv(name)


def test_compose_infrastructure_postgres_16_and_nats_jetstream() -> None:
    postgres = _compose_service("postgres")
    assert str(postgres.get("image")).startswith("postgres:16")
    assert _healthcheck_argv("postgres")[0] == "pg_isready"
    nats = _compose_service("nats")
    assert str(nats.get("image")).startswith("nats:")
    command = [str(arg) for arg in _list(nats.get("command"), "nats command")]
    assert "-js" in command
    assert command[command.index("-m") + 1] == "8222"
    assert re.search(
        r"//(127\.0\.0\.1|localhost):8222/healthz", " ".join(_healthcheck_argv("nats"))
    )
    store = command[command.index("-sd") + 1]
    targets = [str(v).split(":")[1] for v in _list(nats.get("volumes"), "nats volumes")]
    assert store in targets, "the JetStream store must live on a volume"


def test_compose_init_script_creates_exactly_the_service_databases() -> None:
    mounts = [str(v).split(":") for v in _list(_compose_service("postgres").get("volumes"), "")]
    scripts = [src for src, dst, *_ in mounts if dst.startswith("/docker-entrypoint-initdb.d/")]
    assert len(scripts) == 1
    sql = (ROOT / scripts[0]).read_text()
    created = set(re.findall(r"(?im)^\s*CREATE\s+DATABASE\s+(\w+)", sql))
    wanted = {
        _database_name(ServiceSettings.from_env(s, _compose_env(s)).database_url) for s in SERVICES
    }
    assert created == wanted


@pytest.mark.parametrize("process", PROCESSES)
def test_compose_stop_grace_period_outlasts_the_drain(process: str) -> None:
    grace = ServiceSettings.from_env(process, _compose_env(process)).grace_seconds
    period = _compose_service(process).get("stop_grace_period", "10s")  # Docker's default
    assert _duration_seconds(period) > grace


def test_compose_only_the_gateway_publishes_ports() -> None:
    services = _map(_compose().get("services"), "services")
    publishing = {name for name, spec in services.items() if _map(spec, name).get("ports")}
    assert publishing == {"gateway"}


# ---- deploy/k8s ----------------------------------------------------------------------


def _k8s_files() -> list[Path]:
    return sorted(
        p for p in K8S.iterdir() if p.suffix in (".yaml", ".yml") and p.stem != "kustomization"
    )


@cache
def _k8s_objects() -> tuple[dict[str, Any], ...]:
    objects = []
    for path in _k8s_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                objects.append(_map(doc, str(path)))
    return tuple(objects)


def _kustomization() -> dict[str, Any]:
    return _map(yaml.safe_load((K8S / "kustomization.yaml").read_text()), "kustomization")


def _objects(kind: str) -> Iterator[dict[str, Any]]:
    return (o for o in _k8s_objects() if o.get("kind") == kind)


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _objects(kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r} in deploy/k8s, found {len(found)}"
    return found[0]


def _pod_spec(deployment: Mapping[str, Any]) -> dict[str, Any]:
    return _map(deployment["spec"]["template"]["spec"], "pod spec")


def _container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    containers = _list(_pod_spec(deployment).get("containers"), "containers")
    assert len(containers) == 1, "one process per pod"
    return _map(containers[0], "container")


def _template_labels(deployment: Mapping[str, Any]) -> dict[str, Any]:
    return _map(deployment["spec"]["template"]["metadata"]["labels"], "template labels")


def _selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _port_number(container: Mapping[str, Any], port: int | str) -> int:
    """A probe's or Service's target port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    named = [p for p in container.get("ports", []) if p.get("name") == port]
    assert len(named) == 1, f"no container port named {port!r}"
    return int(named[0]["containerPort"])


def _pod_env(deployment: Mapping[str, Any]) -> dict[str, str]:
    """The environment the container gets: its ConfigMaps, then its own `env`
    (values, or keys of Secrets that must exist)."""
    container = _container(deployment)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = _map(source.get("configMapRef"), "envFrom configMapRef")
        env.update(_map(_one("ConfigMap", ref["name"]).get("data"), "ConfigMap data"))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = _map(item["valueFrom"].get("secretKeyRef"), f"{item['name']} secretKeyRef")
        data = _map(_one("Secret", ref["name"]).get("stringData"), "Secret stringData")
        assert ref["key"] in data, f"Secret {ref['name']} has no key {ref['key']}"
        env[item["name"]] = str(data[ref["key"]])
    return env


def test_kustomization_lists_every_manifest_file() -> None:
    kustomization = _kustomization()
    assert kustomization.get("namespace") == NAMESPACE
    listed = [str(r) for r in _list(kustomization.get("resources"), "resources")]
    assert sorted(listed) == [p.name for p in _k8s_files()]


def test_k8s_objects_live_in_the_klik_namespace() -> None:
    assert _one("Namespace", NAMESPACE)
    for obj in _k8s_objects():
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == NAMESPACE, obj["metadata"]["name"]


def test_k8s_configmap_values_are_strings() -> None:
    for config in _objects("ConfigMap"):
        bad = {k: v for k, v in _map(config.get("data"), "data").items() if not isinstance(v, str)}
        assert not bad, f"the API server refuses non-string ConfigMap values: {bad}"


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_service_deployment_ports_probes_and_settings(service: str) -> None:
    deployment = _one("Deployment", service)
    assert deployment["spec"]["replicas"] >= 2
    assert _selects(deployment["spec"]["selector"]["matchLabels"], _template_labels(deployment))
    container = _container(deployment)
    assert container["command"] == ["python", "-m", _module(service)]
    port = SERVICE_PORTS[service]
    assert _port_number(container, "grpc") == port
    assert _port_number(container, "metrics") == METRICS_PORTS[service]
    for kind in PROBES:
        probe = _map(container.get(kind), f"{service} {kind}")
        handlers = {"grpc", "httpGet", "tcpSocket", "exec"} & set(probe)
        assert handlers == {"grpc"}, f"{service} {kind} must be a native gRPC probe"
        assert probe["grpc"]["port"] == port
        # Liveness asks the name that stays SERVING through a dependency outage;
        # startup and readiness ask the overall status.
        wanted = LIVENESS if kind == "livenessProbe" else ""
        assert probe["grpc"].get("service", "") == wanted, f"{service} {kind} health name"
    settings = ServiceSettings.from_env(service, _pod_env(deployment))
    assert (settings.host, settings.port) == ("0.0.0.0", port)
    assert settings.metrics_port == METRICS_PORTS[service]
    assert _database_name(settings.database_url) == f"klik_{service}"
    names = {item["name"] for item in container.get("env", [])}
    others = {f"KLIK_{o.upper()}_DATABASE_URL" for o in SERVICES if o != service}
    assert not names & others, f"{service} must not get another service's database"


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_pod_gets_its_own_private_key_and_every_public_key(service: str) -> None:
    deployment = _one("Deployment", service)
    settings = ServiceSettings.from_env(service, _pod_env(deployment))
    mounts = {m["name"]: m for m in _container(deployment).get("volumeMounts", [])}
    volumes = {v["name"]: v for v in _pod_spec(deployment).get("volumes", [])}
    (name,) = [n for n, m in mounts.items() if m["mountPath"] == str(settings.service_keys_dir)]
    assert mounts[name].get("readOnly") is True
    secret = volumes[name]["secret"]
    assert secret["secretName"] == "klik-service-keys"
    files = {item["path"] for item in secret["items"]}
    assert files == {f"{service}.key", *(f"{other}.pub" for other in SERVICES)}, (
        "only its own private key, and every public key"
    )


@pytest.mark.parametrize("process", PROCESSES)
def test_k8s_pods_are_non_root_limited_and_drain_in_time(process: str) -> None:
    deployment = _one("Deployment", process)
    pod = _pod_spec(deployment)
    container = _container(deployment)
    pod_security = pod.get("securityContext", {})
    security = {**pod_security, **container.get("securityContext", {})}
    assert security.get("runAsNonRoot") is True
    assert security.get("runAsUser", 1) != 0
    assert security.get("allowPrivilegeEscalation") is False
    assert security.get("readOnlyRootFilesystem") is True
    assert "ALL" in security.get("capabilities", {}).get("drop", [])
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{process} {bound}"
    grace = ServiceSettings.from_env(process, _pod_env(deployment)).grace_seconds
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
    sleep = pre_stop.get("command", ["sleep", "0"])
    extra = float(sleep[1]) if sleep[0] == "sleep" else 0.0
    assert pod["terminationGracePeriodSeconds"] > grace + extra


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_headless_service_selects_its_pods_on_the_grpc_port(service: str) -> None:
    deployment = _one("Deployment", service)
    svc = _one("Service", service)
    assert svc["spec"].get("clusterIP") == "None", "headless, for client-side round robin"
    assert _selects(svc["spec"]["selector"], _template_labels(deployment))
    grpc_ports = [p for p in svc["spec"]["ports"] if p.get("name") == "grpc"]
    assert len(grpc_ports) == 1
    port = grpc_ports[0]
    assert port["port"] == SERVICE_PORTS[service]
    target = _port_number(_container(deployment), port.get("targetPort", port["port"]))
    assert target == SERVICE_PORTS[service]


@pytest.mark.parametrize("process", PROCESSES)
def test_k8s_addresses_are_dns_targets_of_headless_services(process: str) -> None:
    env = _pod_env(_one("Deployment", process))
    targets = [s for s in SERVICES if f"KLIK_{s.upper()}_ADDR" in env]
    if process == "gateway":
        assert targets == list(SERVICES), "the gateway needs every KLIK_<SERVICE>_ADDR"
    for target in targets:
        address = service_address(target, env)
        assert address.startswith("dns:///"), f"{address}: use a dns:/// target"
        [(host, port)] = _endpoints(address)
        name, namespace, *rest = host.split(".")
        assert namespace == NAMESPACE and rest in ([], ["svc", "cluster", "local"]), host
        svc = _one("Service", name)
        assert svc["spec"].get("clusterIP") == "None"
        deployment = _one("Deployment", name)
        assert _container(deployment)["command"] == ["python", "-m", _module(target)]
        assert _selects(svc["spec"]["selector"], _template_labels(deployment))
        assert port == SERVICE_PORTS[target]


def test_k8s_gateway_http_probes_and_service() -> None:
    deployment = _one("Deployment", "gateway")
    container = _container(deployment)
    assert container["command"] == ["python", "-m", "gateway"]
    settings = GatewaySettings.from_env(_pod_env(deployment))
    assert (settings.host, settings.port) == ("0.0.0.0", GATEWAY_PORT)
    paths = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for kind, path in paths.items():
        probe = _map(container[kind].get("httpGet"), f"gateway {kind} httpGet")
        assert probe["path"] == path
        assert _port_number(container, probe["port"]) == settings.port
    svc = _one("Service", "gateway")
    assert svc["spec"].get("clusterIP") != "None"
    assert _selects(svc["spec"]["selector"], _template_labels(deployment))
    targets = [
        _port_number(container, p.get("targetPort", p["port"])) for p in svc["spec"]["ports"]
    ]
    assert targets == [settings.port]


@pytest.mark.parametrize("process", PROCESSES)
def test_k8s_disruption_budget_keeps_one_pod(process: str) -> None:
    deployment = _one("Deployment", process)
    labels = _template_labels(deployment)
    budgets = [
        b
        for b in _objects("PodDisruptionBudget")
        if _selects(b["spec"]["selector"]["matchLabels"], labels)
    ]
    assert len(budgets) == 1
    assert budgets[0]["spec"].get("minAvailable") == 1 < deployment["spec"]["replicas"]


def test_k8s_every_deployment_runs_the_one_klik_image() -> None:
    images = {_container(d)["image"] for d in _objects("Deployment")}
    assert len(images) == 1
    [image] = images
    overrides = [str(i["name"]) for i in _kustomization().get("images", [])]
    assert image.split(":")[0] in overrides


def test_k8s_secret_is_a_template_with_one_database_per_service() -> None:
    names = {
        ref["name"]
        for d in _objects("Deployment")
        for item in _container(d).get("env", [])
        if (ref := item.get("valueFrom", {}).get("secretKeyRef"))
    }
    assert len(names) == 1
    data = _map(_one("Secret", names.pop()).get("stringData"), "stringData")
    assert set(data) == {f"KLIK_{s.upper()}_DATABASE_URL" for s in SERVICES}
    for service in SERVICES:
        url = str(data[f"KLIK_{service.upper()}_DATABASE_URL"])
        assert "CHANGE_ME" in url, "secret.yaml is a template: placeholders only, no credentials"
        assert _database_name(url) == f"klik_{service}"


# ---- Dockerfile ----------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, rest = (current + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def _final_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile()
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]


def test_dockerfile_builds_on_python_3_11_slim() -> None:
    instructions = _dockerfile()
    defaults = dict(
        rest.partition("=")[::2]
        for keyword, rest in instructions
        if keyword == "ARG" and "=" in rest
    )
    base = _final_stage()[0][1].split()[0]
    base = re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), base)
    assert base.startswith("python:3.11") and "slim" in base


def test_dockerfile_installs_the_lock_and_the_packages() -> None:
    runs = [rest for keyword, rest in _dockerfile() if keyword == "RUN"]
    assert any("pip install" in r and "requirements.lock" in r for r in runs)
    assert any(re.search(r"pip install --no-deps \.(\s|$)", r) for r in runs)


def test_dockerfile_final_stage_runs_as_non_root_with_a_usage_cmd() -> None:
    stage = _final_stage()
    users = [rest.split(":")[0] for keyword, rest in stage if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the final stage must run as non-root"
    keywords = [keyword for keyword, _ in stage]
    assert "ENTRYPOINT" not in keywords, "compose/k8s commands replace CMD, not ENTRYPOINT"
    cmd = json.loads([rest for keyword, rest in stage if keyword == "CMD"][-1])
    assert isinstance(cmd, list) and cmd[0] == "python" and "usage" in " ".join(cmd)
    env = " ".join(rest for keyword, rest in stage if keyword == "ENV")
    assert re.search(r"\bPYTHONUNBUFFERED=1\b", env)


def test_dockerignore_keeps_junk_out_and_what_the_build_copies_in() -> None:
    patterns = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".venv", "var", "node_modules", ".git"} <= set(patterns)
    copied = [
        source
        for keyword, rest in _dockerfile()
        if keyword == "COPY" and "--from" not in rest
        for source in rest.split()[:-1]
    ]
    assert "requirements.lock" in copied
    for source in copied:
        hits = [p for p in patterns if fnmatch(source, p) or source.startswith(p + "/")]
        assert not hits, f"{source} is copied by the Dockerfile but ignored by {hits}"


# ---- variables -----------------------------------------------------------------------


def test_every_klik_variable_in_the_deployment_files_is_one_the_code_reads() -> None:
    known = _known_variables()
    assert {"KLIK_NATS_URL", "KLIK_GATEWAY_PORT", "KLIK_WALLET_DATABASE_URL"} <= known
    used: set[str] = set()
    services = _map(_compose().get("services"), "services")
    for name in services:
        used.update(_compose_env(name))
    for obj in _k8s_objects():
        used.update(obj.get("data", {}) or {})
        used.update(obj.get("stringData", {}) or {})
    for deployment in _objects("Deployment"):
        used.update(item["name"] for item in _container(deployment).get("env", []))
    for keyword, rest in _dockerfile():
        if keyword == "ENV":
            used.update(re.findall(r"\b(KLIK_[A-Z0-9_]+)=", rest))
    klik = {name for name in used if name.startswith("KLIK_")}
    assert klik, "no KLIK_ variable found: the parsing is broken"
    assert klik <= known, f"unknown to kit.config / gateway.settings: {sorted(klik - known)}"


def test_compose_generation_reaches_the_sandbox_it_waits_for() -> None:
    sandbox_env = _compose_env("sandbox")
    url = _compose_env("generation")["KLIK_SANDBOX_URL"]
    assert url == f"http://sandbox:{sandbox_env['KLIK_SANDBOX_PORT']}"
    assert sandbox_env["KLIK_SANDBOX_HOST"] == "0.0.0.0"
    assert _compose_service("sandbox")["command"] == [
        "python",
        "-m",
        "services.generation.sandbox",
    ]
    assert _depends_on("generation").get("sandbox") == "service_healthy"
    assert _healthcheck_argv("sandbox")
