"""Prometheus metrics shared by every gRPC server, and the endpoint that serves them."""

from __future__ import annotations

import prometheus_client

RPC_HANDLED = prometheus_client.Counter(
    "klik_grpc_server_handled_total",
    "RPCs completed, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
RPC_SECONDS = prometheus_client.Histogram(
    "klik_grpc_server_handling_seconds",
    "Time to handle an RPC, by method.",
    ["grpc_service", "grpc_method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RPC_IN_FLIGHT = prometheus_client.Gauge(
    "klik_grpc_server_in_flight", "RPCs being handled right now."
)


def serve_metrics(host: str, port: int) -> None:
    """Expose /metrics on a background thread (prometheus_client's own server);
    port 0 means metrics are off."""
    if port:
        prometheus_client.start_http_server(port, addr=host)
