"""The deployment files checked against the code, without Docker or a cluster:
`Dockerfile`, `.dockerignore`, `compose.yaml` and `deploy/k8s/` must agree with
`kit.config` (ports, variable names, defaults) and with each other (commands,
probes, labels, references)."""

from __future__ import annotations

import importlib.util
import json
import re
from fnmatch import fnmatch
from urllib.parse import urlsplit

import pytest

from gateway.settings import GatewaySettings
from kit.config import GATEWAY_PORT, METRICS_PORTS, SERVICE_PORTS, ServiceSettings, service_address
from kit.server import LIVENESS
from tests.deploy.files import (
    DOCKERIGNORE,
    NAMESPACE,
    PROCESSES,
    ROOT,
    SERVICES,
    as_list,
    as_map,
    compose,
    compose_env,
    compose_service,
    container_of,
    database_name,
    depends_on,
    dockerfile,
    duration_seconds,
    endpoints,
    final_stage,
    healthcheck_argv,
    k8s_files,
    k8s_objects,
    known_variables,
    kustomization_of,
    module_of,
    objects,
    one,
    pod_env,
    pod_spec,
    port_number,
    selects,
    template_labels,
    volume_target,
)

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


# ---- compose.yaml --------------------------------------------------------------------


def test_compose_follows_the_compose_spec_and_has_every_process() -> None:
    assert "version" not in compose(), "the Compose spec has no `version:`"
    services = set(as_map(compose().get("services"), "services"))
    assert {"postgres", "nats", *PROCESSES} <= services


@pytest.mark.parametrize("process", PROCESSES)
def test_compose_runs_the_right_module_from_the_repo_image(process: str) -> None:
    spec = compose_service(process)
    module = module_of(process)
    assert spec.get("command") == ["python", "-m", module]
    assert importlib.util.find_spec(f"{module}.__main__") is not None, module
    build = spec.get("build")
    context = build if isinstance(build, str) else as_map(build, "build").get("context")
    assert context == ".", f"{process}: must be built from the repository's Dockerfile"
    assert "entrypoint" not in spec


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_listens_on_all_interfaces_with_its_own_database(service: str) -> None:
    env = compose_env(service)
    settings = ServiceSettings.from_env(service, env)
    assert settings.host == "0.0.0.0", "a container must bind every interface"
    assert settings.port == SERVICE_PORTS[service]
    assert settings.metrics_port in (0, METRICS_PORTS[service])
    own = f"KLIK_{service.upper()}_DATABASE_URL"
    assert own in env, f"{service} would fall back to SQLite inside the container"
    assert database_name(settings.database_url) == f"klik_{service}"
    others = {f"KLIK_{o.upper()}_DATABASE_URL" for o in SERVICES if o != service}
    assert not others & set(env), f"{service} must not see another service's database"
    # The password PostgreSQL is created with is the one in the URL, defaulted or set.
    for shell in ({}, {"POSTGRES_PASSWORD": "s3cret"}):
        url = urlsplit(ServiceSettings.from_env(service, compose_env(service, shell)).database_url)
        postgres = compose_env("postgres", shell)
        assert url.hostname == "postgres"
        assert url.username == postgres["POSTGRES_USER"]
        assert (
            url.password == postgres["POSTGRES_PASSWORD"] == shell.get("POSTGRES_PASSWORD", "klik")
        )
    assert urlsplit(settings.nats_url).hostname == "nats"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_healthcheck_probes_its_own_port(service: str) -> None:
    port = ServiceSettings.from_env(service, compose_env(service)).port
    assert healthcheck_argv(service) == ["python", "-m", "kit", "health", f"127.0.0.1:{port}"]


def test_compose_gateway_listens_publishes_and_checks_readiness() -> None:
    settings = GatewaySettings.from_env(compose_env("gateway"))
    assert settings.host == "0.0.0.0"
    assert settings.port == GATEWAY_PORT
    published = [str(p) for p in as_list(compose_service("gateway").get("ports"), "ports")]
    assert published and all(p.split(":")[-1] == str(settings.port) for p in published)
    argv = healthcheck_argv("gateway")
    assert argv[:2] == ["python", "-c"] and "urllib.request" in argv[2]
    assert re.search(rf"http://127\.0\.0\.1:{settings.port}/(readyz|healthz)\b", argv[2])


@pytest.mark.parametrize("process", PROCESSES)
def test_compose_addresses_name_a_service_running_that_module_on_its_port(process: str) -> None:
    env = compose_env(process)
    targets = [s for s in SERVICES if f"KLIK_{s.upper()}_ADDR" in env]
    if process == "gateway":
        assert targets == list(SERVICES), "the gateway needs every KLIK_<SERVICE>_ADDR"
    for target in targets:
        for host, port in endpoints(service_address(target, env)):
            assert compose_service(host).get("command") == ["python", "-m", module_of(target)]
            assert port == ServiceSettings.from_env(target, compose_env(host)).port


def test_compose_dependencies_exist_and_are_healthy_when_they_must_be() -> None:
    services = as_map(compose().get("services"), "services")
    for name in services:
        for dep, condition in depends_on(name).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if condition == "service_healthy":
                assert healthcheck_argv(dep), f"{name} waits for {dep}, which has no healthcheck"
    for service in SERVICES:
        assert depends_on(service).get("postgres") == "service_healthy"
        assert depends_on(service).get("nats") == "service_healthy"
    gateway = depends_on("gateway")
    assert all(gateway.get(service) == "service_healthy" for service in SERVICES)


def test_compose_keys_service_creates_every_identity_before_the_services_start() -> None:
    keys = compose_service("keys")
    assert keys["command"] == ["python", "-m", "kit", "keys", "/var/lib/klik/keys", *SERVICES]
    assert keys.get("restart") == "no", "a one-shot job must not be restarted"
    ((source, target, read_only),) = [volume_target(v) for v in keys["volumes"]]
    assert (target, read_only) == ("/var/lib/klik/keys", False)
    for service in SERVICES:
        assert depends_on(service).get("keys") == "service_completed_successfully"
        settings = ServiceSettings.from_env(service, compose_env(service))
        mounts = [volume_target(v) for v in compose_service(service).get("volumes", [])]
        assert (source, str(settings.service_keys_dir), True) in mounts, service


@pytest.mark.parametrize("name", ["postgres", "nats", *PROCESSES])
def test_compose_every_container_has_a_healthcheck(name: str) -> None:
    assert healthcheck_argv(name)


def test_compose_infrastructure_postgres_16_and_nats_jetstream() -> None:
    postgres = compose_service("postgres")
    assert str(postgres.get("image")).startswith("postgres:16")
    assert healthcheck_argv("postgres")[0] == "pg_isready"
    nats = compose_service("nats")
    assert str(nats.get("image")).startswith("nats:")
    command = [str(arg) for arg in as_list(nats.get("command"), "nats command")]
    assert "-js" in command
    assert command[command.index("-m") + 1] == "8222"
    assert re.search(r"//(127\.0\.0\.1|localhost):8222/healthz", " ".join(healthcheck_argv("nats")))
    store = command[command.index("-sd") + 1]
    targets = [str(v).split(":")[1] for v in as_list(nats.get("volumes"), "nats volumes")]
    assert store in targets, "the JetStream store must live on a volume"


def test_compose_init_script_creates_exactly_the_service_databases() -> None:
    mounts = [str(v).split(":") for v in as_list(compose_service("postgres").get("volumes"), "")]
    scripts = [src for src, dst, *_ in mounts if dst.startswith("/docker-entrypoint-initdb.d/")]
    assert len(scripts) == 1
    sql = (ROOT / scripts[0]).read_text()
    created = set(re.findall(r"(?im)^\s*CREATE\s+DATABASE\s+(\w+)", sql))
    wanted = {
        database_name(ServiceSettings.from_env(s, compose_env(s)).database_url) for s in SERVICES
    }
    assert created == wanted


@pytest.mark.parametrize("process", PROCESSES)
def test_compose_stop_grace_period_outlasts_the_drain(process: str) -> None:
    grace = ServiceSettings.from_env(process, compose_env(process)).grace_seconds
    period = compose_service(process).get("stop_grace_period", "10s")  # Docker's default
    assert duration_seconds(period) > grace


def test_compose_only_the_gateway_publishes_ports() -> None:
    services = as_map(compose().get("services"), "services")
    publishing = {name for name, spec in services.items() if as_map(spec, name).get("ports")}
    assert publishing == {"gateway"}


# ---- deploy/k8s ----------------------------------------------------------------------


def test_kustomization_lists_every_manifest_file() -> None:
    kustomization = kustomization_of()
    assert kustomization.get("namespace") == NAMESPACE
    listed = [str(r) for r in as_list(kustomization.get("resources"), "resources")]
    assert sorted(listed) == [p.name for p in k8s_files()]


def test_k8s_objects_live_in_the_klik_namespace() -> None:
    assert one("Namespace", NAMESPACE)
    for obj in k8s_objects():
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == NAMESPACE, obj["metadata"]["name"]


def test_k8s_configmap_values_are_strings() -> None:
    for config in objects("ConfigMap"):
        bad = {
            k: v for k, v in as_map(config.get("data"), "data").items() if not isinstance(v, str)
        }
        assert not bad, f"the API server refuses non-string ConfigMap values: {bad}"


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_service_deployment_ports_probes_and_settings(service: str) -> None:
    deployment = one("Deployment", service)
    assert deployment["spec"]["replicas"] >= 2
    assert selects(deployment["spec"]["selector"]["matchLabels"], template_labels(deployment))
    container = container_of(deployment)
    assert container["command"] == ["python", "-m", module_of(service)]
    port = SERVICE_PORTS[service]
    assert port_number(container, "grpc") == port
    assert port_number(container, "metrics") == METRICS_PORTS[service]
    for kind in PROBES:
        probe = as_map(container.get(kind), f"{service} {kind}")
        handlers = {"grpc", "httpGet", "tcpSocket", "exec"} & set(probe)
        assert handlers == {"grpc"}, f"{service} {kind} must be a native gRPC probe"
        assert probe["grpc"]["port"] == port
        # Liveness asks the name that stays SERVING through a dependency outage;
        # startup and readiness ask the overall status.
        wanted = LIVENESS if kind == "livenessProbe" else ""
        assert probe["grpc"].get("service", "") == wanted, f"{service} {kind} health name"
    settings = ServiceSettings.from_env(service, pod_env(deployment))
    assert (settings.host, settings.port) == ("0.0.0.0", port)
    assert settings.metrics_port == METRICS_PORTS[service]
    assert database_name(settings.database_url) == f"klik_{service}"
    names = {item["name"] for item in container.get("env", [])}
    others = {f"KLIK_{o.upper()}_DATABASE_URL" for o in SERVICES if o != service}
    assert not names & others, f"{service} must not get another service's database"


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_pod_gets_its_own_private_key_and_every_public_key(service: str) -> None:
    deployment = one("Deployment", service)
    settings = ServiceSettings.from_env(service, pod_env(deployment))
    mounts = {m["name"]: m for m in container_of(deployment).get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod_spec(deployment).get("volumes", [])}
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
    deployment = one("Deployment", process)
    pod = pod_spec(deployment)
    container = container_of(deployment)
    pod_security = pod.get("securityContext", {})
    security = {**pod_security, **container.get("securityContext", {})}
    assert security.get("runAsNonRoot") is True
    assert security.get("runAsUser", 1) != 0
    assert security.get("allowPrivilegeEscalation") is False
    assert security.get("readOnlyRootFilesystem") is True
    assert "ALL" in security.get("capabilities", {}).get("drop", [])
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{process} {bound}"
    grace = ServiceSettings.from_env(process, pod_env(deployment)).grace_seconds
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
    sleep = pre_stop.get("command", ["sleep", "0"])
    extra = float(sleep[1]) if sleep[0] == "sleep" else 0.0
    assert pod["terminationGracePeriodSeconds"] > grace + extra


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_headless_service_selects_its_pods_on_the_grpc_port(service: str) -> None:
    deployment = one("Deployment", service)
    svc = one("Service", service)
    assert svc["spec"].get("clusterIP") == "None", "headless, for client-side round robin"
    assert selects(svc["spec"]["selector"], template_labels(deployment))
    grpc_ports = [p for p in svc["spec"]["ports"] if p.get("name") == "grpc"]
    assert len(grpc_ports) == 1
    port = grpc_ports[0]
    assert port["port"] == SERVICE_PORTS[service]
    target = port_number(container_of(deployment), port.get("targetPort", port["port"]))
    assert target == SERVICE_PORTS[service]


@pytest.mark.parametrize("process", PROCESSES)
def test_k8s_addresses_are_dns_targets_of_headless_services(process: str) -> None:
    env = pod_env(one("Deployment", process))
    targets = [s for s in SERVICES if f"KLIK_{s.upper()}_ADDR" in env]
    if process == "gateway":
        assert targets == list(SERVICES), "the gateway needs every KLIK_<SERVICE>_ADDR"
    for target in targets:
        address = service_address(target, env)
        assert address.startswith("dns:///"), f"{address}: use a dns:/// target"
        [(host, port)] = endpoints(address)
        name, namespace, *rest = host.split(".")
        assert namespace == NAMESPACE and rest in ([], ["svc", "cluster", "local"]), host
        svc = one("Service", name)
        assert svc["spec"].get("clusterIP") == "None"
        deployment = one("Deployment", name)
        assert container_of(deployment)["command"] == ["python", "-m", module_of(target)]
        assert selects(svc["spec"]["selector"], template_labels(deployment))
        assert port == SERVICE_PORTS[target]


def test_k8s_gateway_http_probes_and_service() -> None:
    deployment = one("Deployment", "gateway")
    container = container_of(deployment)
    assert container["command"] == ["python", "-m", "gateway"]
    settings = GatewaySettings.from_env(pod_env(deployment))
    assert (settings.host, settings.port) == ("0.0.0.0", GATEWAY_PORT)
    paths = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for kind, path in paths.items():
        probe = as_map(container[kind].get("httpGet"), f"gateway {kind} httpGet")
        assert probe["path"] == path
        assert port_number(container, probe["port"]) == settings.port
    svc = one("Service", "gateway")
    assert svc["spec"].get("clusterIP") != "None"
    assert selects(svc["spec"]["selector"], template_labels(deployment))
    targets = [port_number(container, p.get("targetPort", p["port"])) for p in svc["spec"]["ports"]]
    assert targets == [settings.port]


@pytest.mark.parametrize("process", PROCESSES)
def test_k8s_disruption_budget_keeps_one_pod(process: str) -> None:
    deployment = one("Deployment", process)
    labels = template_labels(deployment)
    budgets = [
        b
        for b in objects("PodDisruptionBudget")
        if selects(b["spec"]["selector"]["matchLabels"], labels)
    ]
    assert len(budgets) == 1
    assert budgets[0]["spec"].get("minAvailable") == 1 < deployment["spec"]["replicas"]


def test_k8s_every_deployment_runs_the_one_klik_image() -> None:
    images = {container_of(d)["image"] for d in objects("Deployment")}
    assert len(images) == 1
    [image] = images
    overrides = [str(i["name"]) for i in kustomization_of().get("images", [])]
    assert image.split(":")[0] in overrides


def test_k8s_secret_is_a_template_with_one_database_per_service() -> None:
    names = {
        ref["name"]
        for d in objects("Deployment")
        for item in container_of(d).get("env", [])
        if (ref := item.get("valueFrom", {}).get("secretKeyRef"))
        and item["name"].endswith("_DATABASE_URL")
    }
    assert len(names) == 1
    data = as_map(one("Secret", names.pop()).get("stringData"), "stringData")
    assert set(data) == {f"KLIK_{s.upper()}_DATABASE_URL" for s in SERVICES}
    for service in SERVICES:
        url = str(data[f"KLIK_{service.upper()}_DATABASE_URL"])
        assert "CHANGE_ME" in url, "secret.yaml is a template: placeholders only, no credentials"
        assert database_name(url) == f"klik_{service}"


# ---- Dockerfile ----------------------------------------------------------------------


def test_dockerfile_builds_on_python_3_11_slim() -> None:
    instructions = dockerfile()
    defaults = dict(
        rest.partition("=")[::2]
        for keyword, rest in instructions
        if keyword == "ARG" and "=" in rest
    )
    base = final_stage()[0][1].split()[0]
    base = re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), base)
    assert base.startswith("python:3.11") and "slim" in base


def test_dockerfile_installs_the_lock_and_the_packages() -> None:
    runs = [rest for keyword, rest in dockerfile() if keyword == "RUN"]
    assert any("pip install" in r and "requirements.lock" in r for r in runs)
    assert any(re.search(r"pip install --no-deps \.(\s|$)", r) for r in runs)


def test_dockerfile_final_stage_runs_as_non_root_with_a_usage_cmd() -> None:
    stage = final_stage()
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
        for keyword, rest in dockerfile()
        if keyword == "COPY" and "--from" not in rest
        for source in rest.split()[:-1]
    ]
    assert "requirements.lock" in copied
    for source in copied:
        hits = [p for p in patterns if fnmatch(source, p) or source.startswith(p + "/")]
        assert not hits, f"{source} is copied by the Dockerfile but ignored by {hits}"


# ---- variables -----------------------------------------------------------------------


def test_every_klik_variable_in_the_deployment_files_is_one_the_code_reads() -> None:
    known = known_variables()
    assert {"KLIK_NATS_URL", "KLIK_GATEWAY_PORT", "KLIK_WALLET_DATABASE_URL"} <= known
    used: set[str] = set()
    services = as_map(compose().get("services"), "services")
    for name in services:
        used.update(compose_env(name))
    for obj in k8s_objects():
        used.update(obj.get("data", {}) or {})
        used.update(obj.get("stringData", {}) or {})
    for deployment in objects("Deployment"):
        used.update(item["name"] for item in container_of(deployment).get("env", []))
    for keyword, rest in dockerfile():
        if keyword == "ENV":
            used.update(re.findall(r"\b(KLIK_[A-Z0-9_]+)=", rest))
    klik = {name for name in used if name.startswith("KLIK_")}
    assert klik, "no KLIK_ variable found: the parsing is broken"
    assert klik <= known, f"unknown to kit.config / gateway.settings: {sorted(klik - known)}"


def test_compose_generation_reaches_the_sandbox_it_waits_for() -> None:
    sandbox_env = compose_env("sandbox")
    url = compose_env("generation")["KLIK_SANDBOX_URL"]
    assert url == f"http://sandbox:{sandbox_env['KLIK_SANDBOX_PORT']}"
    assert sandbox_env["KLIK_SANDBOX_HOST"] == "0.0.0.0"
    assert compose_service("sandbox")["command"] == ["python", "-m", "sandbox"]
    assert depends_on("generation").get("sandbox") == "service_healthy"
    assert healthcheck_argv("sandbox")
