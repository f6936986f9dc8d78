"""Every ssehub setting, read from the environment in one place.

`Config.from_env(os.environ)` is the only reader of the environment; a bad
value raises `ConfigError` whose message names the variable, so the start-up
can stop with that one line.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from .channels import check_channel, check_pattern
from .redis_url import parse_redis_url
from .tokens import MIN_SECRET_BYTES, load_public_key


class ConfigError(ValueError):
    """A setting has a value ssehub cannot use; the message names it."""


@dataclasses.dataclass(frozen=True)
class Config:
    # Port to listen on; PaaS routers set it. Default 5000.
    port: int = 5000
    # Address to bind. Default 0.0.0.0 (all interfaces).
    host: str = "0.0.0.0"
    # Serve /metrics on this port (on HOST) instead of PORT, whose /metrics
    # then answers 404: keep it off the public router. Default: unset (PORT).
    metrics_port: int | None = None
    # Unset: the embedded in-memory broker (one process, history lost on
    # restart). redis://, rediss:// (one Redis or a cluster's nodes) or
    # redis+sentinel:// selects the Redis broker (redis_url.py).
    redis_url: str | None = None
    # Where Redis has replicas, a publish is answered 201 only once every
    # replica that could be promoted holds it (Redis WAIT), else 503, so a
    # failover cannot lose it: "replica", the default. "primary" answers once
    # the primary has it (faster, but an event the primary had not passed on
    # is lost when a replica takes over).
    publish_ack: str = "replica"
    # Bearer token for POST /publish. Unset: only requests made directly on
    # this machine may publish (loopback, no proxy, not from a web page of
    # another site); see publish_auth.authorize.
    publish_token: str | None = None
    # Signs the chat name cookie. Unset: a random key per process (names are
    # forgotten on restart, and differ between processes; set it when scaling out).
    secret_key: str | None = None
    # Channels that accept chat posts from browsers. Default: chat. Empty: no chat.
    chat_channels: tuple[str, ...] = ("chat",)
    # Origins allowed to read /events cross-origin; "*" allows any.
    # Default: none (same-origin only).
    allowed_origins: tuple[str, ...] = ()
    # Events kept per channel for resuming. Default 1000.
    history_size: int = 1000
    # Seconds between comment heartbeats on an idle stream. Default 15; it
    # cannot be turned off, because it is how a vanished client is noticed.
    heartbeat_seconds: float = 15.0
    # Reconnect delay the hub advises browsers, in milliseconds. Default 2000.
    retry_ms: int = 2000
    # Largest event data in bytes (UTF-8). Default 65536.
    max_event_bytes: int = 65536
    # Events buffered for one subscriber before it is dropped as too slow
    # (it then resumes by id). Default 1000.
    client_queue: int = 1000
    # Peers (addresses or networks, or * for any) whose X-Forwarded-For,
    # -Proto, -Host and -Port headers are believed. Default: none, so behind
    # a proxy or PaaS router every client shares the proxy's address.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Seconds a client has to send a whole request head (slowloris); also how
    # long an idle keep-alive connection stays open. Default 60.
    request_head_timeout: float = 60.0
    # Seconds one write to a client may take before it is dropped (a
    # subscriber that stopped reading). Default 60.
    write_timeout: float = 60.0
    # Open streams per client address; past it /events answers 200 with
    # retry: and ends. Default 100; 0 turns it off.
    max_streams_per_client: int = 100
    # Open streams in this process (also capped by the open-file limit).
    # Default 10000.
    max_streams: int = 10_000
    # Worker processes sharing the port (SO_REUSEPORT), the PaaS convention.
    # Default 1. More than 1 needs REDIS_URL: workers meet only through Redis.
    web_concurrency: int = 1
    # One log line per HTTP request. Default off: at thousands of publishes a
    # second the log line costs more than the publish (issue 12).
    access_log: bool = False
    # The least severe log lines written: debug, info, warning or error. Default info.
    log_level: str = "info"
    # text (one readable line) or json (one object a line, with the request's
    # id, client, method, path, status, bytes and duration_ms). Default text.
    log_format: str = "text"
    # Verifies HS256 tokens (at least 32 bytes). With it or JWT_PUBLIC_KEY set,
    # channels outside PUBLIC_CHANNELS need a token to be read (issue 11).
    jwt_secret: str | None = None
    # Verifies RS256 or ES256 tokens: a PEM public key, with real newlines or \n escapes.
    jwt_public_key: str | None = None
    # When set, a token's aud must include it / its iss must equal it.
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # Channel patterns anyone may read. None, the default: * without a JWT
    # key (an open hub), none with one (every channel needs a token).
    public_channels: tuple[str, ...] | None = None

    @property
    def private_channels(self) -> bool:
        """Whether tokens are verified at all (a JWT key is set)."""
        return bool(self.jwt_secret or self.jwt_public_key)

    @property
    def readable_without_token(self) -> tuple[str, ...]:
        """PUBLIC_CHANNELS, its default filled in."""
        if self.public_channels is not None:
            return self.public_channels
        return () if self.private_channels else ("*",)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read and check every setting; raise ConfigError naming the first bad one."""
        config = cls(
            port=_int(env, "PORT", cls.port, low=1, high=65535),
            host=env.get("HOST", cls.host).strip() or cls.host,
            metrics_port=_metrics_port(env),
            redis_url=_redis_url(env),
            publish_ack=_choice(env, "PUBLISH_ACK", ("replica", "primary")),
            publish_token=_publish_token(env),
            secret_key=_secret_key(env),
            chat_channels=_chat_channels(env),
            allowed_origins=_origins(env),
            history_size=_int(env, "HISTORY_SIZE", cls.history_size, low=1, high=10_000_000),
            heartbeat_seconds=_float(env, "HEARTBEAT_SECONDS", cls.heartbeat_seconds),
            retry_ms=_int(env, "RETRY_MS", cls.retry_ms, low=0, high=3_600_000),
            max_event_bytes=_int(env, "MAX_EVENT_BYTES", cls.max_event_bytes, low=1, high=16 * 2**20),
            client_queue=_int(env, "CLIENT_QUEUE", cls.client_queue, low=1, high=1_000_000),
            trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
            request_head_timeout=_float(env, "REQUEST_HEAD_TIMEOUT", cls.request_head_timeout),
            write_timeout=_float(env, "WRITE_TIMEOUT", cls.write_timeout),
            max_streams_per_client=_int(env, "MAX_STREAMS_PER_CLIENT", cls.max_streams_per_client, low=0, high=10**6),
            max_streams=_int(env, "MAX_STREAMS", cls.max_streams, low=1, high=10**7),
            web_concurrency=_int(env, "WEB_CONCURRENCY", cls.web_concurrency, low=1, high=256),
            access_log=_bool(env, "ACCESS_LOG", cls.access_log),
            log_level=_choice(env, "LOG_LEVEL", ("info", "debug", "warning", "error")),
            log_format=_choice(env, "LOG_FORMAT", ("text", "json")),
            jwt_secret=_jwt_secret(env),
            jwt_public_key=_jwt_public_key(env),
            jwt_audience=env.get("JWT_AUDIENCE", "").strip() or None,
            jwt_issuer=env.get("JWT_ISSUER", "").strip() or None,
            public_channels=_public_channels(env),
        )
        if (config.jwt_audience or config.jwt_issuer) and not config.private_channels:
            raise ConfigError(
                f"{'JWT_AUDIENCE' if config.jwt_audience else 'JWT_ISSUER'} needs JWT_SECRET or JWT_PUBLIC_KEY: "
                "without a key no token is verified"
            )
        if config.readable_without_token != ("*",) and not config.private_channels:
            raise ConfigError(
                "PUBLIC_CHANNELS needs JWT_SECRET or JWT_PUBLIC_KEY: without a key no token can be "
                "verified, so the other channels could be read by no one"
            )
        if config.web_concurrency > 1 and not config.redis_url:
            raise ConfigError(
                f"WEB_CONCURRENCY={config.web_concurrency} needs REDIS_URL: each worker's embedded broker would "
                "keep its own events, so subscribers would miss what other workers publish; "
                "set REDIS_URL or WEB_CONCURRENCY=1"
            )
        return config


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range; use {low} to {high}")
    return value


def _metrics_port(env: Mapping[str, str]) -> int | None:
    if not env.get("METRICS_PORT", "").strip():
        return None
    port = _int(env, "METRICS_PORT", 0, low=1, high=65535)
    if port == _int(env, "PORT", Config.port, low=1, high=65535):
        raise ConfigError(f"METRICS_PORT={port} is PORT too; give metrics a port of their own, or unset METRICS_PORT")
    return port


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not on or off; use 1 or 0")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices`; the first is the default."""
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise ConfigError(f"{name}={raw} is out of range; use more than 0 and at most 3600")
    return value


def _redis_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("REDIS_URL", "").strip()
    if not raw:
        return None
    try:
        parse_redis_url(raw)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return raw


def _publish_token(env: Mapping[str, str]) -> str | None:
    return _pasted_secret(env, "PUBLISH_TOKEN")


def _pasted_secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret as given, or None; one pasted with its newline would start fine
    and then refuse every request that uses it."""
    raw = env.get(name, "")
    if raw != raw.strip():
        raise ConfigError(f"{name} has leading or trailing whitespace (a newline?); remove it")
    return raw or None


def _networks(env: Mapping[str, str], name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    entries = [entry.strip() for entry in env.get(name, "").split(",") if entry.strip()]
    if entries == ["*"]:
        return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
    except ValueError as error:
        raise ConfigError(f"{name}: {error}; list addresses or networks like 10.0.0.0/8, or * for any") from None


def _secret_key(env: Mapping[str, str]) -> str | None:
    raw = env.get("SECRET_KEY")
    if raw and len(raw) < 16:
        raise ConfigError("SECRET_KEY is too short; use at least 16 random characters")
    return raw or None


def _chat_channels(env: Mapping[str, str]) -> tuple[str, ...]:
    names = _checked_list(env, "CHAT_CHANNELS", check_channel)
    return Config.chat_channels if names is None else names


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("ALLOWED_ORIGINS", "")
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc or parts.path):
            raise ConfigError(f"ALLOWED_ORIGINS entry {origin!r} is not an origin like https://example.com (or *)")
    return origins


def _jwt_secret(env: Mapping[str, str]) -> str | None:
    raw = env.get("JWT_SECRET", "")
    if raw and len(raw.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"JWT_SECRET is too short; use at least {MIN_SECRET_BYTES} random bytes")
    return _pasted_secret(env, "JWT_SECRET")


def _jwt_public_key(env: Mapping[str, str]) -> str | None:
    raw = env.get("JWT_PUBLIC_KEY", "").strip()
    if not raw:
        return None
    # PaaS settings and .env files often hold one line: the newlines as \n.
    pem = raw.replace("\\n", "\n") + "\n"
    try:
        load_public_key(pem)
    except ValueError as error:
        raise ConfigError(f"JWT_PUBLIC_KEY {error}") from None
    return pem


def _public_channels(env: Mapping[str, str]) -> tuple[str, ...] | None:
    return _checked_list(env, "PUBLIC_CHANNELS", check_pattern)


def _checked_list(env: Mapping[str, str], name: str, check: Callable[[str], str]) -> tuple[str, ...] | None:
    """The comma-separated entries of `name`, each passed by `check`; None when it is unset."""
    if name not in env:
        return None
    entries = tuple(entry.strip() for entry in env[name].split(",") if entry.strip())
    for entry in entries:
        try:
            check(entry)
        except ValueError as error:
            raise ConfigError(f"{name}: {error}") from None
    return entries
