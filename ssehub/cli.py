"""The `ssehub` command (and `python -m ssehub`, `python service.py`): serve on $PORT.

gevent's monkey-patching must come before anything else imports socket or
threading; the entry points patch first, then call main().
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import os
import sys
import textwrap

from . import log_format
from .app import create_app
from .config import Config, ConfigError
from .server import serve
from .workers import serve_workers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ssehub",
        description="A Server-Sent Events hub. Every setting is an environment variable:",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    try:
        config = Config.from_env(os.environ)
        log_format.configure(config.log_level.upper(), config.log_format)
        if config.web_concurrency > 1:
            return serve_workers(config)
        return serve(create_app(config))
    except ConfigError as error:
        print(f"ssehub: {error}", file=sys.stderr)
        return 2


def settings_help() -> str:
    """Each setting's variable, default and description: the comments above Config's fields."""
    source = inspect.getsource(Config)
    lines = source.splitlines()
    described: dict[str, str] = {}
    previous = ""
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        comments: list[str] = []
        row = node.lineno - 2
        while row >= 0 and lines[row].strip().startswith("#"):
            comments.insert(0, lines[row].strip().lstrip("# "))
            row -= 1
        described[node.target.id] = previous = " ".join(comments) or previous  # a shared comment
    return "\n".join(
        f"  {field.name.upper()} (default: {_shown(field.default)})\n"
        + textwrap.fill(described[field.name], width=100, initial_indent=" " * 6, subsequent_indent=" " * 6)
        for field in dataclasses.fields(Config)
    )


def _shown(default: object) -> str:
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "1" if default else "0"
    if isinstance(default, tuple):
        return ",".join(map(str, default)) or "none"
    return str(default)
