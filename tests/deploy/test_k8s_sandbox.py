"""The provider sandbox in Kubernetes: an optional kustomize Component
(`deploy/k8s/components/sandbox`), enabled by the overlay `deploy/k8s-sandbox`,
that runs `python -m sandbox` and points generation's KLIK_SANDBOX_URL
at it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from sandbox.settings import SandboxSettings
from services.generation.settings import sandbox_url
from tests.deploy.files import (
    K8S,
    NAMESPACE,
    as_list,
    as_map,
    container_of,
    known_variables,
    kustomization_of,
    one,
    pod_env,
    pod_spec,
    port_number,
    selects,
    template_labels,
)

COMPONENT = K8S / "components" / "sandbox"
OVERLAY = K8S.parent / "k8s-sandbox"


def _load(path: Path) -> dict[str, Any]:
    return as_map(yaml.safe_load(path.read_text()), str(path))


@cache
def _component_objects() -> tuple[dict[str, Any], ...]:
    component = _load(COMPONENT / "kustomization.yaml")
    docs: list[object] = []
    for resource in as_list(component.get("resources"), "resources"):
        docs.extend(d for d in yaml.safe_load_all((COMPONENT / resource).read_text()) if d)
    return tuple(as_map(d, "sandbox object") for d in docs)


def _component_one(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _component_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r} in the sandbox component"
    return found[0]


def _patches() -> list[dict[str, Any]]:
    component = _load(COMPONENT / "kustomization.yaml")
    return [_load(COMPONENT / p["path"]) for p in as_list(component.get("patches"), "patches")]


def test_component_lists_every_file_it_holds() -> None:
    component = _load(COMPONENT / "kustomization.yaml")
    assert component["kind"] == "Component"
    listed = {*component["resources"], *(p["path"] for p in component["patches"])}
    on_disk = {p.name for p in COMPONENT.glob("*.yaml") if p.stem != "kustomization"}
    assert listed == on_disk


def test_overlay_adds_the_component_to_the_base_with_the_base_image() -> None:
    overlay = _load(OVERLAY / "kustomization.yaml")
    [base] = overlay["resources"]
    [component] = overlay["components"]
    assert (OVERLAY / base).resolve() == K8S.resolve()
    assert (OVERLAY / component).resolve() == COMPONENT.resolve()
    # The base's image override does not reach the sandbox: the overlay repeats it.
    assert overlay.get("images") == kustomization_of().get("images")
    [deployment_image] = {c["image"] for c in pod_spec(_sandbox())["containers"]}
    assert deployment_image.split(":")[0] in {i["name"] for i in overlay["images"]}


def _sandbox() -> dict[str, Any]:
    return _component_one("Deployment", "sandbox")


def _sandbox_env() -> dict[str, str]:
    return {item["name"]: str(item["value"]) for item in container_of(_sandbox()).get("env", [])}


def test_sandbox_runs_the_module_on_all_interfaces_with_http_probes() -> None:
    deployment = _sandbox()
    assert deployment["metadata"]["namespace"] == NAMESPACE
    # One replica: the sandbox keeps its provider jobs in memory.
    assert deployment["spec"]["replicas"] == 1
    assert selects(deployment["spec"]["selector"]["matchLabels"], template_labels(deployment))
    container = container_of(deployment)
    assert container["command"] == ["python", "-m", "sandbox"]
    env = _sandbox_env()
    assert env["KLIK_SANDBOX_HOST"] == "0.0.0.0"
    port = SandboxSettings.from_env(env).port
    assert port_number(container, "http") == port
    for kind in ("readinessProbe", "livenessProbe"):
        probe = as_map(container[kind].get("httpGet"), f"sandbox {kind}")
        assert probe["path"] == "/_sandbox/health"
        assert port_number(container, probe["port"]) == port


def test_sandbox_pod_is_non_root_and_limited() -> None:
    pod = pod_spec(_sandbox())
    container = container_of(_sandbox())
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    assert security.get("runAsNonRoot") is True and security.get("runAsUser", 0) != 0
    assert security.get("readOnlyRootFilesystem") is True
    assert security.get("allowPrivilegeEscalation") is False
    assert "ALL" in security.get("capabilities", {}).get("drop", [])
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound])


def test_generation_reaches_the_sandbox_service_through_the_patched_config() -> None:
    [patch] = _patches()
    assert (patch["kind"], patch["metadata"]["name"]) == ("ConfigMap", "klik-config")
    generation = one("Deployment", "generation")
    names = {s["configMapRef"]["name"] for s in container_of(generation)["envFrom"]}
    assert patch["metadata"]["name"] in names, "the patch must reach generation's env"
    env = {**pod_env(generation), **as_map(patch["data"], "patch data")}
    url = urlsplit(sandbox_url(env))
    name, namespace, *rest = (url.hostname or "").split(".")
    assert namespace == NAMESPACE and rest in ([], ["svc", "cluster", "local"])
    service = _component_one("Service", name)
    assert selects(service["spec"]["selector"], template_labels(_sandbox()))
    [port] = [p for p in service["spec"]["ports"] if p["port"] == url.port]
    target = port_number(container_of(_sandbox()), port.get("targetPort", port["port"]))
    assert target == SandboxSettings.from_env(_sandbox_env()).port


def test_sandbox_variables_are_ones_the_code_reads() -> None:
    used = set(_sandbox_env())
    for patch in _patches():
        used.update(as_map(patch.get("data"), "patch data"))
    assert used and used <= known_variables()
