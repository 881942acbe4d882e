"""klik's typed async Python client (httpx), over the gateway's public API."""

from klik_client.client import ROUTES, EventStream, KlikClient, Page, Session, parse_events
from klik_client.errors import KlikError

__all__ = ["ROUTES", "EventStream", "KlikClient", "KlikError", "Page", "Session", "parse_events"]
