"""Logging set-up for entry points, with request context carried by contextvars.

Library code only ever calls ``logging.getLogger(__name__)``. Nothing here logs request bodies:
they can hold secret values. As a last line of defence every line (and its traceback) passes the
process-wide ``Redactor`` (``core.redact``): bearer tokens always, and every value registered with
``core.redact.register_secret``, become ``[REDACTED]``.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from typing import Any

from clawfleet.core.redact import Redactor, default_redactor

request_id_var: ContextVar[str | None] = ContextVar("clawfleet_request_id", default=None)
principal_var: ContextVar[str | None] = ContextVar("clawfleet_principal", default=None)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        record.principal = principal_var.get() or "-"
        return True


class RedactingFilter(logging.Filter):
    """Redacts a record's message, traceback and stack in place, before any formatter sees it.

    Install it on handlers (not loggers): a handler filter sees records from every logger that
    propagates to it. ``redactor`` defaults to the process-wide one.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or default_redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redactor.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse a cached exc_text; fill the cache with the redacted text.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "principal": getattr(record, "principal", "-"),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        return json.dumps(doc)


def configure_logging(level: str = "info", *, json_format: bool = False) -> None:
    """Send every log line to stderr with the request context; call once per process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.addFilter(RedactingFilter())
    if json_format:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s %(principal)s] %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One line per HTTP request from the runner's client would drown its real messages.
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv_logger = logging.getLogger(name)
        uv_logger.handlers[:] = []
        uv_logger.propagate = True
