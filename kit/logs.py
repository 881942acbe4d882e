"""JSON logs: one object a line with time, level, service, request_id, message, extra.

The request id comes from `kit.context`, so every line written while serving a call
(or handling an event) carries it without callers passing it around."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from kit.context import request_id_var

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "request_id": request_id_var.get() or None,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
        if extra:
            line["extra"] = extra
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def setup_logging(service: str, level: str = "INFO") -> None:
    """Route every logger (ours, grpc's, sqlalchemy's, uvicorn's) through one JSON
    handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Warnings raised from now on are log records too, not bare lines in the JSON log.
    logging.captureWarnings(True)
    for noisy in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).handlers[:] = []
        logging.getLogger(noisy).propagate = True
