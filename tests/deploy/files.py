"""The deployment files, parsed: `compose.yaml`, `deploy/k8s/`, the `Dockerfile`, and
typed access to what is in them. tests/deploy checks them against the code."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kit.config import SERVICE_PORTS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "deploy" / "k8s"
NAMESPACE = "klik"
SERVICES = tuple(SERVICE_PORTS)
PROCESSES = (*SERVICES, "gateway")


def as_map(value: object, what: str) -> dict[str, Any]:
    assert isinstance(value, dict), f"{what}: expected a mapping, got {value!r}"
    return value


def as_list(value: object, what: str) -> list[Any]:
    assert isinstance(value, list), f"{what}: expected a list, got {value!r}"
    return value


def module_of(process: str) -> str:
    return "gateway" if process == "gateway" else f"services.{process}"


def endpoints(address: str) -> list[tuple[str, int]]:
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


def database_name(url: str) -> str:
    parts = urlsplit(url)
    assert parts.scheme == "postgresql+psycopg", url
    return parts.path.lstrip("/")


@cache
def known_variables() -> frozenset[str]:
    """Every `KLIK_*` name the code reads, found in its source: quoted literals
    ("KLIK_NATS_URL") and `prefix + "_PORT"` where `prefix = f"KLIK_{x.upper()}"`,
    expanded for each service."""
    literal = re.compile(r"""["'](KLIK_[A-Z0-9_]+)["']""")
    prefix_def = re.compile(r"""(\w+)\s*=\s*f["']KLIK_\{\w+\.upper\(\)\}["']""")
    suffix = re.compile(r"""(\w+)\s*\+\s*["'](_[A-Z0-9_]+)["']""")
    names: set[str] = set()
    packages = ("kit", "gateway", "services", "sandbox", "stack")
    sources = [p for d in packages for p in (ROOT / d).rglob("*.py")]
    for source in sources:
        text = source.read_text()
        names.update(literal.findall(text))
        prefixes = set(prefix_def.findall(text))
        for variable, tail in suffix.findall(text):
            if variable in prefixes:
                names.update(f"KLIK_{service.upper()}{tail}" for service in SERVICE_PORTS)
    return frozenset(names)


@cache
def compose() -> dict[str, Any]:
    return as_map(yaml.safe_load(COMPOSE.read_text()), "compose.yaml")


def compose_service(name: str) -> dict[str, Any]:
    services = as_map(compose().get("services"), "services")
    assert name in services, f"compose.yaml has no service {name!r}"
    return as_map(services[name], name)


# `${NAME}`, `${NAME:-default}`, `${NAME-default}` (Compose interpolation).
_INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?-)([^}]*))?\}")


def interpolate(value: str, shell: Mapping[str, str] | None = None) -> str:
    """A compose value as Compose substitutes it from `shell` (default: an empty
    shell, so every default applies)."""
    variables = shell or {}

    def substitute(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3) or ""
        if name in variables and (operator != ":-" or variables[name]):
            return variables[name]
        return default

    return _INTERPOLATION.sub(substitute, value)


def compose_env(name: str, shell: Mapping[str, str] | None = None) -> dict[str, str]:
    """A compose service's environment, interpolated from `shell` (default: empty)."""
    raw = compose_service(name).get("environment", {})
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {key: interpolate(value, shell) for key, _, value in pairs}
    return {
        str(k): "" if v is None else interpolate(str(v), shell)
        for k, v in as_map(raw, name).items()
    }


def healthcheck(name: str) -> dict[str, Any]:
    return as_map(compose_service(name).get("healthcheck"), f"{name} healthcheck")


def healthcheck_argv(name: str) -> list[str]:
    check = healthcheck(name)
    assert not check.get("disable"), f"{name}: healthcheck disabled"
    test = check.get("test")
    if isinstance(test, str):  # a plain string runs in a shell, like CMD-SHELL
        return shlex.split(test)
    kind, *rest = as_list(test, f"{name} healthcheck test")
    if kind == "CMD":
        return [str(arg) for arg in rest]
    assert kind == "CMD-SHELL", f"{name}: healthcheck test {test!r}"
    return shlex.split(rest[0])


def depends_on(name: str) -> dict[str, str]:
    """Dependency -> condition, whichever syntax the file uses."""
    raw = compose_service(name).get("depends_on", {})
    if isinstance(raw, list):
        return {str(dep): "service_started" for dep in raw}
    return {
        str(dep): str(as_map(spec, f"{name} depends_on {dep}").get("condition", "service_started"))
        for dep, spec in as_map(raw, f"{name} depends_on").items()
    }


def duration_seconds(value: object) -> float:
    """A compose duration: `20s`, `1m30s`, `500ms`, `1h` (a bare number is seconds)."""
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"bad duration {value!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def volume_target(mount: object) -> tuple[str, str, bool]:
    """(source, target, read_only) of a compose short-syntax volume."""
    source, target, *mode = str(mount).split(":")
    return source, target, mode == ["ro"]


def k8s_files() -> list[Path]:
    return sorted(
        p for p in K8S.iterdir() if p.suffix in (".yaml", ".yml") and p.stem != "kustomization"
    )


@cache
def k8s_objects() -> tuple[dict[str, Any], ...]:
    objects = []
    for path in k8s_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                objects.append(as_map(doc, str(path)))
    return tuple(objects)


def kustomization_of() -> dict[str, Any]:
    return as_map(yaml.safe_load((K8S / "kustomization.yaml").read_text()), "kustomization")


def objects(kind: str) -> Iterator[dict[str, Any]]:
    return (o for o in k8s_objects() if o.get("kind") == kind)


def one(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects(kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r} in deploy/k8s, found {len(found)}"
    return found[0]


def pod_spec(deployment: Mapping[str, Any]) -> dict[str, Any]:
    return as_map(deployment["spec"]["template"]["spec"], "pod spec")


def container_of(deployment: Mapping[str, Any]) -> dict[str, Any]:
    containers = as_list(pod_spec(deployment).get("containers"), "containers")
    assert len(containers) == 1, "one process per pod"
    return as_map(containers[0], "container")


def template_labels(deployment: Mapping[str, Any]) -> dict[str, Any]:
    return as_map(deployment["spec"]["template"]["metadata"]["labels"], "template labels")


def selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def port_number(container: Mapping[str, Any], port: int | str) -> int:
    """A probe's or Service's target port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    named = [p for p in container.get("ports", []) if p.get("name") == port]
    assert len(named) == 1, f"no container port named {port!r}"
    return int(named[0]["containerPort"])


def pod_env(deployment: Mapping[str, Any]) -> dict[str, str]:
    """The environment the container gets: its ConfigMaps, then its own `env`
    (values, or keys of Secrets that must exist)."""
    container = container_of(deployment)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = as_map(source.get("configMapRef"), "envFrom configMapRef")
        env.update(as_map(one("ConfigMap", ref["name"]).get("data"), "ConfigMap data"))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = as_map(item["valueFrom"].get("secretKeyRef"), f"{item['name']} secretKeyRef")
        data = as_map(one("Secret", ref["name"]).get("stringData"), "Secret stringData")
        assert ref["key"] in data, f"Secret {ref['name']} has no key {ref['key']}"
        env[item["name"]] = str(data[ref["key"]])
    return env


def dockerfile() -> list[tuple[str, str]]:
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


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]
