"""Tokens never reach a log line (issue 11, item 4), whoever writes it.

A filter on the log handlers blanks `token=` query values and anything shaped
like a JWT: the access log, the hub's own messages, and pywsgi's lines about
requests refused before the app (a 414 quotes the whole request line).
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
_QUERY_TOKEN = re.compile(r"(?<=[?&;]token=)[^&\s\"'#]+", re.IGNORECASE)
# A JWT's header is base64url JSON, so it starts with "eyJ" ('{"').
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    return _JWT.sub(REDACTED, _QUERY_TOKEN.sub(REDACTED, text))


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def redact_handlers(logger: logging.Logger) -> None:
    """Put the filter on every handler of `logger` (the root logger, once it is configured)."""
    for handler in logger.handlers:
        if not any(isinstance(existing, RedactTokens) for existing in handler.filters):
            handler.addFilter(RedactTokens())
