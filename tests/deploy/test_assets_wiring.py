"""Generated media in the deployments: generation writes to the asset store and the
gateway serves from it, so both must open the same store (kit.assets) — a shared
volume on one host (compose), an S3 bucket across nodes (Kubernetes)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway.settings import GatewaySettings
from kit.assets import AssetSettings
from tests.deploy.files import (
    as_list,
    as_map,
    compose,
    compose_env,
    compose_service,
    container_of,
    final_stage,
    k8s_objects,
    objects,
    one,
    pod_env,
    pod_spec,
    volume_target,
)

WRITER, READER = "generation", "gateway"
S3_KEYS = ("KLIK_S3_ACCESS_KEY_ID", "KLIK_S3_SECRET_ACCESS_KEY")
S3_SHELL = {
    "KLIK_ASSET_STORE": "s3",
    "KLIK_S3_ENDPOINT": "http://minio:9000",
    "KLIK_S3_BUCKET": "media",
    "KLIK_S3_ACCESS_KEY_ID": "AKID",
    "KLIK_S3_SECRET_ACCESS_KEY": "secret",
}


def _same_store(a: AssetSettings, b: AssetSettings) -> None:
    # Every field, the secret too (kept out of repr, not out of ==).
    assert a == b, "generation and the gateway must open the same asset store"


# ---- compose -------------------------------------------------------------------------


def test_compose_generation_writes_and_gateway_reads_one_asset_volume() -> None:
    writer = AssetSettings.from_env(compose_env(WRITER))
    reader = AssetSettings.from_env(compose_env(READER))
    _same_store(writer, reader)
    assert writer.store == "local"
    mounts = {
        name: [volume_target(v) for v in compose_service(name).get("volumes", [])]
        for name in (WRITER, READER)
    }
    [(source, _, writer_ro)] = [m for m in mounts[WRITER] if m[1] == str(writer.directory)]
    [(reader_source, _, reader_ro)] = [m for m in mounts[READER] if m[1] == str(reader.directory)]
    assert source == reader_source, "one named volume, mounted in both"
    assert source in as_map(compose().get("volumes"), "volumes"), "a named volume, kept on down"
    # The gateway writes users' uploads (gateway/uploads.py); content only checks them.
    assert (writer_ro, reader_ro) == (False, False), "generation and the gateway write"
    checker = AssetSettings.from_env(compose_env("content"))
    _same_store(writer, checker)
    [(checker_source, _, checker_ro)] = [
        volume_target(v)
        for v in compose_service("content").get("volumes", [])
        if volume_target(v)[1] == str(checker.directory)
    ]
    assert (checker_source, checker_ro) == (source, True), "content reads uploads only"
    others = [
        name
        for name in as_map(compose().get("services"), "services")
        if name not in (WRITER, READER, "content")
        and any(volume_target(v)[0] == source for v in compose_service(name).get("volumes", []))
    ]
    assert others == []
    secrets = {name: compose_env(name, {"KLIK_UPLOAD_SECRET": "s"}) for name in (READER, "content")}
    assert {env.get("KLIK_UPLOAD_SECRET") for env in secrets.values()} == {"s"}


def test_compose_switches_both_to_s3_from_the_shell_alone() -> None:
    writer = AssetSettings.from_env(compose_env(WRITER, S3_SHELL))
    reader = AssetSettings.from_env(compose_env(READER, S3_SHELL))
    _same_store(writer, reader)
    assert (writer.store, writer.s3_endpoint, writer.s3_bucket) == (
        "s3",
        "http://minio:9000",
        "media",
    )
    assert (writer.s3_access_key_id, writer.s3_secret_access_key) == ("AKID", "secret")


def test_compose_asset_urls_point_at_the_published_gateway() -> None:
    settings = AssetSettings.from_env(compose_env(WRITER))
    gateway = GatewaySettings.from_env(compose_env(READER))
    url = urlsplit(settings.public_base_url)
    published = [str(p) for p in as_list(compose_service(READER).get("ports"), "ports")]
    host_ports = {int(p.split(":")[-2]) for p in published}
    assert url.port in host_ports and url.path == "/v1/files"
    assert all(int(p.split(":")[-1]) == gateway.port for p in published)


def test_dockerfile_creates_the_asset_directory_for_the_klik_user() -> None:
    """A named volume mounted on a directory the image lacks is created root-owned,
    and the klik user (uid 10001) could not write to it; on one the image has, Docker
    copies the directory's owner to the new volume."""
    directory = str(AssetSettings.from_env(compose_env(WRITER)).directory)
    created = [
        rest
        for keyword, rest in final_stage()
        if keyword == "RUN" and re.search(r"install -d -o klik -g klik\b", rest)
    ]
    assert any(re.search(rf"(\s){re.escape(directory)}(\s|&|$)", run) for run in created), (
        f"the Dockerfile's runtime stage must `install -d -o klik -g klik ... {directory}`"
    )


# ---- Kubernetes ----------------------------------------------------------------------


def test_k8s_generation_and_gateway_share_one_s3_store() -> None:
    writer = AssetSettings.from_env(pod_env(one("Deployment", WRITER)))
    reader = AssetSettings.from_env(pod_env(one("Deployment", READER)))
    _same_store(writer, reader)
    # Pods on different nodes share no directory without a ReadWriteMany volume.
    assert writer.store == "s3"
    assert writer.s3_bucket and urlsplit(writer.s3_endpoint).scheme == "https"
    assert urlsplit(writer.public_base_url).path == "/v1/files"


@pytest.mark.parametrize("process", [WRITER, READER, "content"])
def test_k8s_s3_keys_come_from_an_optional_secret_template(process: str) -> None:
    env = {item["name"]: item for item in container_of(one("Deployment", process)).get("env", [])}
    refs = [env[name]["valueFrom"]["secretKeyRef"] for name in S3_KEYS]
    assert {ref["name"] for ref in refs} == {"klik-assets"}
    assert [ref["key"] for ref in refs] == list(S3_KEYS)
    # Optional: on AWS the Secret is deleted and the pods' IAM role (IRSA) applies.
    assert all(ref.get("optional") is True for ref in refs)
    data = as_map(one("Secret", "klik-assets").get("stringData"), "stringData")
    assert set(data) == {*S3_KEYS, "KLIK_UPLOAD_SECRET"}
    assert all("CHANGE_ME" in str(v) for v in data.values()), "a template: no real keys"


def test_k8s_only_generation_gateway_and_content_get_the_s3_keys() -> None:
    holders = {
        d["metadata"]["name"]
        for d in objects("Deployment")
        if S3_KEYS[1] in {item["name"] for item in container_of(d).get("env", [])}
    }
    assert holders == {WRITER, READER, "content"}  # content checks uploaded files
    for config in objects("ConfigMap"):
        assert not set(S3_KEYS) & set(as_map(config.get("data"), "data")), "keys are secrets"


def _volume_sources(volume: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in volume.items() if k != "name"}


def test_k8s_volumes_use_only_fields_their_source_has() -> None:
    """The API server refuses unknown fields (e.g. a sizeLimit on a Secret volume)."""
    allowed = {
        "emptyDir": {"medium", "sizeLimit"},
        "secret": {"secretName", "items", "defaultMode", "optional"},
        "configMap": {"name", "items", "defaultMode", "optional"},
        "persistentVolumeClaim": {"claimName", "readOnly"},
    }
    deployments = [o for o in k8s_objects() if o.get("kind") == "Deployment"]
    assert deployments
    for deployment in deployments:
        for volume in pod_spec(deployment).get("volumes", []):
            [(kind, source)] = _volume_sources(volume).items()
            assert kind in allowed, f"{volume['name']}: unexpected volume type {kind}"
            extra = set(source or {}) - allowed[kind]
            assert not extra, f"{deployment['metadata']['name']} {volume['name']}: {extra}"
            if kind == "emptyDir":
                assert "sizeLimit" in source, f"{volume['name']}: an emptyDir needs a bound"


def test_the_default_asset_url_is_the_gateway_files_route() -> None:
    for env in ({}, {"KLIK_GATEWAY_PORT": "9000"}):
        port = GatewaySettings.from_env(env).port
        assert AssetSettings.from_env(env).public_base_url == f"http://127.0.0.1:{port}/v1/files"


def test_k8s_gateway_and_content_share_the_upload_secret() -> None:
    """Content signs upload URLs, the gateway checks them: one key, from one Secret."""
    for process in (READER, "content"):
        env = {i["name"]: i for i in container_of(one("Deployment", process)).get("env", [])}
        ref = env["KLIK_UPLOAD_SECRET"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == ("klik-assets", "KLIK_UPLOAD_SECRET")
