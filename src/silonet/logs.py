"""Log setup for ``silonet serve``: text (default) or one JSON object per line, and the request
id that ties an API call to the service's write and the reconcile passes it caused.

The id lives in a contextvar: the API middleware sets it, sync endpoints inherit it in their
worker thread, the reconciler carries it from the write that bumped a gateway into that
gateway's next pass (reconcile/reconciler.py), and a filter on the handler stamps every
record with it, whichever logger made the record.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from contextvars import ContextVar
from typing import TextIO

REQUEST_ID: ContextVar[str | None] = ContextVar("silonet_request_id", default=None)
HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")  # a client's id is echoed and logged: no spaces, no quotes
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
FORMATS = ("text", "json")


def request_id(offered: str | None) -> str:
    """The client's id when it is a sane token, else a new one."""
    if offered and _SANE.fullmatch(offered):
        return offered
    return secrets.token_hex(8)


class RequestIdFilter(logging.Filter):
    """Stamps ``record.request_id`` (``-`` outside any request). On the handler, not a logger:
    records that propagate from child loggers pass a handler's filters, not the parent's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, message, request_id, exc."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        out = {"ts": ts, "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        rid = getattr(record, "request_id", None)
        if rid and rid != "-":
            out["request_id"] = rid
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def handler(fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """A handler that writes ``fmt`` lines (stderr by default), every record stamped with its request id."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    out = logging.StreamHandler(stream or sys.stderr)
    out.addFilter(RequestIdFilter())
    out.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return out


def configure(fmt: str = "text", level: int = logging.INFO) -> logging.Handler:
    """The root logger's only handler; uvicorn's loggers propagate to it (run uvicorn with
    ``log_config=None``), so its access lines are in the same format and carry the request id."""
    out = handler(fmt)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(out)
    root.setLevel(level)
    return out


def add_id(ids: str | None, new: str | None, most: int = 4) -> str | None:
    """Request ids of several writes that one pass serves, comma-separated (at most ``most``)."""
    if not new or not ids:
        return ids or new
    have = ids.split(",")
    return ids if new in have or len(have) >= most else f"{ids},{new}"
