"""The servers under comparison: how each is started on core 0, and how the load generator talks to it.

ssehub runs from the project's .venv; the peers from bench/.venv-peers
(bench/requirements-peers.txt); nginx+Nchan from Debian's packages.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
import json
import os
import re
import resource
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from .procs import Child

SERVER_CORE = 0
NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
JSON_PUBLISH = '{"channel":"{channel}","data":"{data}"}'
# All a child gets from our environment: a PUBLISH_TOKEN or HISTORY_SIZE set
# in the shell must not change what is measured.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


@dataclasses.dataclass(frozen=True)
class Setup:
    """What every start needs: where things are, and the bench's own Redis."""

    root: Path
    run_dir: Path
    redis_url: str
    hub_python: Path
    peers_bin: Path
    workers: int | None


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """How bench/loadgen subscribes to and publishes on one server."""

    sub_path: str
    pub_path: str
    pub_body: str
    pub_headers: tuple[str, ...] = ("Content-Type: application/json",)

    def loadgen_args(self) -> list[str]:
        args = ["--sub-path", self.sub_path, "--pub-method", "POST", "--pub-path", self.pub_path]
        args += ["--pub-body", self.pub_body]
        for header in self.pub_headers:
            args += ["--pub-header", header]
        return args


@dataclasses.dataclass(frozen=True)
class Server:
    name: str
    endpoints: Endpoints
    # start(setup, port, use_redis) -> the running child; use_redis only matters for ssehub.
    start: Callable[[Setup, int, bool], Child]
    # Every stream holds a Redis connection too (flask-sse), so fewer fit the open-file limit.
    files_per_stream: int = 1


# "ssehub-private": every channel needs a token (issue 11), each subscriber sends one.
PRIVATE_SECRET = secrets.token_urlsafe(32)


def hs256_token(secret: str, claims: dict) -> str:
    """A JWT signed with HMAC-SHA256, for the load generator's subscribers (the hub verifies it with PyJWT)."""

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    signing_input = f"{part(header)}.{part(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def subscriber_token() -> str:
    now = int(time.time())
    claims = {"sub": "bench", "iat": now, "exp": now + 86_400, "ssehub": {"subscribe": ["*"]}}
    return hs256_token(PRIVATE_SECRET, claims)


def start_ssehub(setup: Setup, port: int, use_redis: bool, private: bool = False) -> Child:
    env = {
        **base_env(),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        # Every bench subscriber comes from 127.0.0.1: no per-address cap.
        "MAX_STREAMS_PER_CLIENT": "0",
        # Above the 10,000 held streams; the open-file limit still caps it.
        "MAX_STREAMS": "30000",
    }
    if use_redis:
        env["REDIS_URL"] = setup.redis_url
    if setup.workers:
        env["WEB_CONCURRENCY"] = str(setup.workers)
    if private:
        env["JWT_SECRET"] = PRIVATE_SECRET
    broker = ("private-" if private else "") + ("redis" if use_redis else "memory")
    argv = [str(setup.hub_python), str(setup.root / "service.py")]
    log = setup.run_dir / f"ssehub-{broker}-{port}.log"
    return Child("ssehub", argv, log, SERVER_CORE, env=env, cwd=setup.root)


def start_nchan(setup: Setup, port: int, use_redis: bool) -> Child:
    prefix = setup.run_dir / f"nginx-{port}"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(
        fill_template(
            (setup.root / "bench" / "peers" / "nchan.conf").read_text(),
            prefix=str(prefix),
            port=str(port),
            nchan_module=str(NCHAN_MODULE),
            nofile=str(resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
        )
    )
    argv = ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), "-g", "daemon off;"]
    return Child("nginx+nchan", argv, prefix / "stdout.log", SERVER_CORE, env=base_env())


def start_starlette(setup: Setup, port: int, use_redis: bool) -> Child:
    argv = [
        str(setup.peers_bin / "uvicorn"),
        *("--app-dir", str(setup.root / "bench" / "peers")),
        *("--factory", "starlette_app:create_app"),
        *("--host", "127.0.0.1", "--port", str(port)),
        "--no-access-log",
        *("--timeout-graceful-shutdown", "2"),
    ]
    return Child("sse-starlette", argv, setup.run_dir / f"starlette-{port}.log", SERVER_CORE, env=base_env())


def start_flask_sse(setup: Setup, port: int, use_redis: bool) -> Child:
    argv = [
        str(setup.peers_bin / "gunicorn"),
        *("--chdir", str(setup.root / "bench" / "peers")),
        *("-k", "gevent", "-w", "1", "--worker-connections", "20000"),
        *("-b", f"127.0.0.1:{port}", "--backlog", "2048"),
        *("--graceful-timeout", "2"),
        # gunicorn 27 opens a control socket in ~/.gunicorn by default; not wanted here.
        "--no-control-socket",
        "flask_sse_app:create_app()",
    ]
    env = {**base_env(), "REDIS_URL": setup.redis_url}
    return Child("flask-sse", argv, setup.run_dir / f"flask-sse-{port}.log", SERVER_CORE, env=env)


def base_env() -> dict[str, str]:
    return {name: os.environ[name] for name in PASSED_ENV if name in os.environ}


def fill_template(text: str, **values: str) -> str:
    """Replace each @name@; nginx's own $variables and braces stay as they are."""
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    if leftover := re.findall(r"@\w+@", text):
        raise ValueError(f"nchan.conf template: no value for {leftover[0]}")
    return text


SERVERS = {
    "ssehub": Server(
        "ssehub",
        Endpoints("/events?channel={channel}", "/publish", JSON_PUBLISH),
        start_ssehub,
    ),
    # Only the storm and the restarts: what a token adds is its check on every connect.
    "ssehub-private": Server(
        "ssehub-private",
        Endpoints("/events?channel={channel}&token=" + subscriber_token(), "/publish", JSON_PUBLISH),
        functools.partial(start_ssehub, private=True),
    ),
    "nchan": Server(
        "nchan",
        # Nchan answers 403 to a subscriber without Accept: text/event-stream
        # (it cannot tell which subscriber type is wanted); loadgen always sends it.
        Endpoints("/sub/{channel}", "/pub/{channel}", "{data}", pub_headers=("Content-Type: text/plain",)),
        start_nchan,
    ),
    "starlette": Server(
        "starlette",
        Endpoints("/events?channel={channel}", "/publish", JSON_PUBLISH),
        start_starlette,
    ),
    "flask-sse": Server(
        "flask-sse",
        Endpoints("/stream?channel={channel}", "/publish", JSON_PUBLISH),
        start_flask_sse,
        files_per_stream=2,
    ),
}
