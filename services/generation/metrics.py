"""Prometheus metrics of generation jobs (served on the service's /metrics)."""

from __future__ import annotations

import prometheus_client

JOBS = prometheus_client.Counter(
    "klik_generation_jobs_total",
    "Job status transitions, by kind and the status entered.",
    ["kind", "status"],
)
PROVIDER_SECONDS = prometheus_client.Histogram(
    "klik_generation_provider_seconds",
    "Time a job spent on its provider (start to result, media fetched), by provider, "
    "kind and outcome.",
    ["provider", "kind", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800),
)
QUEUE_SECONDS = prometheus_client.Histogram(
    "klik_generation_queue_seconds",
    "Time from a job's creation to a worker starting it, by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
