"""Reading request bodies safely, for /publish and the chat routes (issue 9, item 4).

A body is read whole or refused with 413, chunked ones too; JSON is parsed only
once its nesting is known to be shallow, counted without recursion.
"""

from __future__ import annotations

import itertools
import json
import re

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

# Deeper than any real event; json.loads and json.dumps recurse once per level.
MAX_JSON_DEPTH = 64

# A JSON string, or an unterminated one up to the end; possessive, so linear.
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]++")
# Each bracket as a signed byte: +1 opens a level, -1 closes one.
_LEVEL_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class NestedTooDeep(ValueError):
    """JSON nested deeper than MAX_JSON_DEPTH; the message says so and how to fix it."""


def read(request: Request, limit: int) -> bytes:
    """The whole body (kept for request.form), or 413 when it is over `limit` bytes.

    Werkzeug stops a chunked body at max_content_length without a word, so the
    hub reads one byte more than the limit to tell a cut body from one that fits.
    """
    request.max_content_length = limit + 1
    try:
        body = request.get_data()
    except RequestEntityTooLarge:
        body = None
    if body is None or len(body) > limit:
        raise RequestEntityTooLarge(f"the request body is over {limit} bytes; send less")
    return body


def loads(body: bytes) -> object:
    """JSON text (UTF-8, RFC 8259 §8.1) as Python values; ValueError if it is not
    JSON, NestedTooDeep if it nests deeper than MAX_JSON_DEPTH."""
    text = body.decode("utf-8-sig")
    if nesting_depth(text) > MAX_JSON_DEPTH:
        raise NestedTooDeep(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep; flatten it")
    return json.loads(text)


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in JSON text, ignoring brackets inside strings.

    Only regular expressions and C iterators run per character, so a
    20,000-level body costs no more than a flat one of the same size.
    """
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text))
    steps = memoryview(brackets.encode("ascii").translate(_LEVEL_STEPS)).cast("b")
    return max(itertools.accumulate(steps), default=0)
