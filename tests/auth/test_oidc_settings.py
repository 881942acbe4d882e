"""Social sign-in's settings and rules without I/O: KLIK_OIDC_PROVIDERS parsing, the
embedded stack's default provider, and which app pages a sign-in may end on."""

from __future__ import annotations

import json

import pytest

from kit.config import ConfigError
from kit.errors import InvalidArgument
from services.auth import kek
from services.auth.oidc import app_redirect, with_parameters
from services.auth.oidc_settings import OidcOptions
from services.auth.settings import AuthOptions
from stack.topology import plan

PUBLIC = "https://klik.example"


def providers(*entries: object) -> dict[str, str]:
    return {"KLIK_OIDC_PROVIDERS": json.dumps(list(entries))}


GOOGLE = {
    "name": "google",
    "issuer": "https://accounts.google.com",
    "client_id": "id.apps.googleusercontent.com",
    "client_secret": "s3cret",
}


def test_providers_are_read_from_json() -> None:
    options = OidcOptions.from_env(providers(GOOGLE))
    google = options.provider("google")
    assert google is not None and google.issuer == "https://accounts.google.com"
    assert google.scope == "openid email profile" and options.provider("other") is None
    assert OidcOptions.from_env({}).providers == ()


@pytest.mark.parametrize(
    "entries",
    [
        [{**GOOGLE, "client_secret": ""}],
        [{**GOOGLE, "name": "Google!"}],
        [{**GOOGLE, "issuer": "accounts.google.com"}],
        [{**GOOGLE, "scope": "email"}],
        [{**GOOGLE, "colour": "blue"}],
        [GOOGLE, GOOGLE],
    ],
    ids=["no-secret", "bad-name", "bad-issuer", "no-openid", "unknown-key", "twice"],
)
def test_bad_providers_are_refused(entries: list[object]) -> None:
    with pytest.raises(ConfigError):
        OidcOptions.from_env(providers(*entries))
    with pytest.raises(ConfigError):
        OidcOptions.from_env({"KLIK_OIDC_PROVIDERS": "{not json"})


def test_the_embedded_stack_configures_the_sandbox_idp() -> None:
    # The stack makes auth's key-encryption key when it starts; planning does not.
    key = {"KLIK_AUTH_KEK": kek.new_key_line()}
    env = {**plan({"KLIK_VAR_DIR": "/tmp/klik-oidc-settings-test"}).env, **key}
    [sandbox] = AuthOptions.from_env(env).oidc.providers
    assert sandbox.name == "sandbox"
    assert sandbox.issuer == f"{env['KLIK_SANDBOX_URL']}/oidc"
    mine = plan({"KLIK_VAR_DIR": "/tmp/klik-oidc-settings-test", **providers(GOOGLE)}).env
    assert [p.name for p in AuthOptions.from_env({**mine, **key}).oidc.providers] == ["google"]


def test_app_pages_are_paths_or_allowed_origins() -> None:
    allowed = frozenset({"https://studio.example:8443"})
    assert app_redirect("", PUBLIC, allowed) == f"{PUBLIC}/sign-in/oidc"
    assert app_redirect("/done?x=1", PUBLIC, allowed) == f"{PUBLIC}/done?x=1"
    assert app_redirect(f"{PUBLIC}/a", PUBLIC, allowed) == f"{PUBLIC}/a"
    assert app_redirect("https://STUDIO.example:8443/b", PUBLIC, allowed)
    for page in (
        "//evil.example",
        "https://evil.example/",
        "https://klik.example@evil.example/",
        "https://studio.example/b",  # another port: another origin
        "javascript:alert(1)",
        "/\\evil.example",
    ):
        with pytest.raises(InvalidArgument):
            app_redirect(page, PUBLIC, allowed)


def test_parameters_join_the_page_query() -> None:
    assert with_parameters("https://a.example/p?x=1#f", code="c", state="") == (
        "https://a.example/p?x=1&code=c#f"
    )
