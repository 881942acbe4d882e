"""The client address is the gateway's own decision (gateway.clientaddr): the peer,
or with configured proxies the right-most untrusted X-Forwarded-For hop; services get
that one address as `klik-client-address`, never the client's chain."""

from __future__ import annotations

import httpx
import pytest

from gateway.clientaddr import TrustedProxies, parse_networks
from gateway.settings import GatewaySettings
from tests.gateway.fakes import StartGateway, Upstream


def proxies(value: str) -> TrustedProxies:
    return TrustedProxies(parse_networks("KLIK_GATEWAY_TRUSTED_PROXIES", value))


def test_no_proxy_is_trusted_by_default() -> None:
    settings = GatewaySettings.from_env({})
    assert settings.trusted_proxies.networks == ()
    assert settings.trusted_proxies.client_of("127.0.0.1", ["10.9.1.1"]) == "127.0.0.1"


def test_the_right_most_untrusted_hop_is_the_client() -> None:
    trusted = proxies("10.0.0.0/8, 192.0.2.7")
    # A forged left part stays left of the hop the trusted proxy saw.
    assert trusted.client_of("10.1.1.1", ["6.6.6.6, 198.51.100.7"]) == "198.51.100.7"
    # Several trusted proxies in a row are skipped; header lines join in order.
    assert trusted.client_of("10.1.1.1", ["6.6.6.6, 203.0.113.9", "192.0.2.7, 10.2.2.2"]) == (
        "203.0.113.9"
    )
    # An untrusted peer's header is not read at all.
    assert trusted.client_of("198.51.100.1", ["10.3.3.3"]) == "198.51.100.1"
    # A trusted proxy without a header, or with garbage: the proxy is all we know.
    assert trusted.client_of("10.1.1.1", []) == "10.1.1.1"
    assert trusted.client_of("10.1.1.1", ["6.6.6.6, not-an-ip"]) == "10.1.1.1"
    # Every hop trusted: the left-most one.
    assert trusted.client_of("10.1.1.1", ["10.4.4.4, 10.5.5.5"]) == "10.4.4.4"
    assert proxies("::1/128").client_of("::1", ["2001:db8::1"]) == "2001:db8::1"


def test_a_trusted_proxy_setting_that_is_not_a_cidr_is_refused() -> None:
    with pytest.raises(ValueError, match="KLIK_GATEWAY_TRUSTED_PROXIES"):
        GatewaySettings.from_env({"KLIK_GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"})


async def test_forged_forwarded_for_never_reaches_a_service(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    """The drill's 25 failed logins, each with a forged `X-Forwarded-For: 10.9.N.N`:
    auth is told the same, real address every time (so its throttle counts them)."""
    addresses = []
    async with httpx.AsyncClient(base_url=gateway.base_url) as anonymous:
        for n in range(25):
            forged = {"X-Forwarded-For": f"10.9.{n}.{n}"}
            reply = await anonymous.post(
                "/v1/auth/login", json={"email": "a@b.c", "password": "x"}, headers=forged
            )
            assert reply.status_code == 200
            _, metadata = upstream.seen["Login"]
            assert "x-forwarded-for" not in metadata
            addresses.append(metadata["klik-client-address"])
    assert addresses == ["127.0.0.1"] * 25


async def test_behind_a_trusted_proxy_the_forwarded_client_is_passed_on(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gateway = await start_gateway(KLIK_GATEWAY_TRUSTED_PROXIES="127.0.0.0/8")
    async with httpx.AsyncClient(base_url=gateway.base_url) as behind_proxy:
        await behind_proxy.post(
            "/v1/auth/login",
            json={},
            headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 127.0.0.2"},
        )
    _, metadata = upstream.seen["Login"]
    assert metadata["klik-client-address"] == "198.51.100.7"
    assert "x-forwarded-for" not in metadata
