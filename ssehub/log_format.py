"""The log's two shapes (issue 14, item 7): LOG_FORMAT=text, one readable line,
or json, one object a line with time, level, logger and message, and for a
request its request_id, client, method, path (tokens redacted), status,
bytes and duration_ms. Every line is redacted first (log_redaction)."""

from __future__ import annotations

import datetime
import json
import logging

from . import log_redaction, request_ids

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes a log call may pass with `extra=` that the JSON line carries.
REQUEST_FIELDS = ("request_id", "client", "method", "path", "status", "bytes", "duration_ms")


ACCESS = '%(client)s "%(method)s %(path)s" %(status)s %(bytes)s %(duration_ms).1fms id=%(request_id)s'
access_logger = logging.getLogger("ssehub.access")


def log_access(environ: dict, method: str, path: str, status: int, size: int, seconds: float) -> None:
    """One access line, the same under pywsgi (server.py) and gunicorn (gunicorn_conf.py)."""
    fields = {
        "request_id": environ.get(request_ids.ENVIRON_KEY, "-"),
        "client": environ.get("REMOTE_ADDR") or "-",
        "method": method or "-",
        "path": log_redaction.redact(path),
        "status": status,
        "bytes": size,
        "duration_ms": round(seconds * 1000, 1),
    }
    access_logger.info(ACCESS, fields, extra=fields)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in REQUEST_FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str = "INFO", shape: str = "text") -> None:
    """The root logger's one handler, on stderr, in `shape` ("text" or "json")."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if shape == "json" else logging.Formatter(TEXT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
