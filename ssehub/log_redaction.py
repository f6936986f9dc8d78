"""Tokens never reach a log line (issue 11, item 4), whoever writes it.

Every log record is made through a factory that blanks `token=` query values
and anything shaped like a JWT: the access log, the hub's own messages,
pywsgi's lines about requests refused before the app (a 414 quotes the whole
request line), and another server's log (gunicorn's access log) alike.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
_QUERY_TOKEN = re.compile(r"(?<=[?&;]token=)[^&\s\"'#]+", re.IGNORECASE)
# Runs of the characters a JWT is made of, each matched once: a pattern for
# the JWT itself would rescan the rest of a long line from every "eyJ".
_RUN = re.compile(r"[A-Za-z0-9_.-]{16,}")


def redact(text: str) -> str:
    return _RUN.sub(_unless_jwt, _QUERY_TOKEN.sub(REDACTED, text))


def _unless_jwt(run: re.Match) -> str:
    """The run, or REDACTED when it holds a JWT (a base64url JSON header, "eyJ", and two dots)."""
    text = run[0]
    return REDACTED if "eyJ" in text and text.count(".") >= 2 else text


def install() -> None:
    """Redact every log record this process makes from now on, whoever logs
    it and however logging is set up (our own handlers, or gunicorn's)."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacts", False):
        return

    def redacted_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:
            # Arguments that do not fit the message: logged as they came, redacted.
            message = f"{record.msg} {record.args!r}"
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    redacted_record.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacted_record)
