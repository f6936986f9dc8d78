"""REDIS_URL's forms: one Redis or a cluster's nodes, or the Sentinels of a service.

    redis[s]://[user:password@]host:6379[,host:6379…][/db][?ssl_cert_reqs=none…]
    redis[s]+sentinel://[user:password@]host:26379[,host:26379…]/service[/db][?…]

Several hosts are for start-up when one is down; the credentials and the
query (redis-py's URL parameters, such as TLS files) are written once and
apply to every node. Pure parsing, so a bad URL stops the start (issue 13).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from urllib.parse import parse_qs, unquote, urlsplit

from redis.connection import URL_QUERY_ARGUMENT_PARSERS

_SCHEMES = {"redis": (False, False), "rediss": (False, True), "redis+sentinel": (True, False)}
_SCHEMES["rediss+sentinel"] = (True, True)
_HOST = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\],/]+)(?::(?P<port>[0-9]{1,5}))?$")
# What redis-py's connections take as text, besides the parameters it parses
# (URL_QUERY_ARGUMENT_PARSERS; not retry_on_error, a list of exception classes).
_TEXT_PARAMETERS = {
    "client_name", "username", "password", "encoding", "encoding_errors",
    "ssl_ca_certs", "ssl_ca_data", "ssl_ca_path", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile", "ssl_password",
    "ssl_ciphers",
}  # fmt: skip
_CERT_REQS = ("none", "optional", "required")
FORMS = (
    "redis://host:6379/0, rediss://host:6380/0, redis://host1:6379,host2:6379 (a cluster's nodes) "
    "or redis+sentinel://host1:26379,host2:26379/service-name"
)


@dataclasses.dataclass(frozen=True)
class RedisAddress:
    sentinel: bool
    tls: bool
    hosts: tuple[tuple[str, int], ...]
    userinfo: str  # as written, still percent-encoded: "user:password@" or ""
    service: str | None  # the Sentinel service name
    db: int
    query: str

    def node_url(self, host: str, port: int) -> str:
        """A URL of one Redis node that redis-py reads, with the credentials, db and query."""
        scheme = "rediss" if self.tls else "redis"
        query = f"?{self.query}" if self.query else ""
        return f"{scheme}://{self.userinfo}{host}:{port}/{self.db}{query}"

    @property
    def urls(self) -> list[str]:
        return [self.node_url(host, port) for host, port in self.hosts]

    def describe(self) -> str:
        """For the log: scheme, hosts and service, never the credentials."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.hosts)
        scheme = ("rediss" if self.tls else "redis") + ("+sentinel" if self.sentinel else "")
        return f"{scheme}://{hosts}/" + (f"{self.service}/{self.db}" if self.sentinel else str(self.db))


def parse_redis_url(raw: str) -> RedisAddress:
    """Raise ValueError, saying what is wrong, unless `raw` is one of the forms above."""
    try:
        parts = urlsplit(raw)
    except ValueError:  # an unclosed [ of an IPv6 address
        raise ValueError(f"REDIS_URL must look like {FORMS}") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"REDIS_URL must look like {FORMS}")
    sentinel, tls = _SCHEMES[parts.scheme]
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    hosts = tuple(_host(text, 26379 if sentinel else 6379) for text in hostlist.split(","))
    path = [unquote(piece) for piece in parts.path.split("/")[1:] if piece]
    service = None
    if sentinel:
        if not path:
            raise ValueError("REDIS_URL names no Sentinel service: redis+sentinel://host:26379/service-name")
        service, path = path[0], path[1:]
    if len(path) > 1 or (path and not path[0].isdigit()):
        raise ValueError(f"REDIS_URL's path must be a database number: {FORMS}")
    _check_query(parts.query, tls)
    db = int(path[0]) if path else 0
    return RedisAddress(sentinel, tls, hosts, f"{userinfo}@" if userinfo else "", service, db, parts.query)


def _check_query(query: str, tls: bool) -> None:
    """Parameters redis-py takes, with values it can read: a typo must stop the start, not the first connection."""
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name.startswith("ssl_") and not tls:
            raise ValueError(f"REDIS_URL's {name} needs TLS: rediss:// or rediss+sentinel://")
        parser: Callable[[str], object] | None = URL_QUERY_ARGUMENT_PARSERS.get(name)  # type: ignore[assignment]
        if name == "retry_on_error" or (parser is None and name not in _TEXT_PARAMETERS):
            raise ValueError(f"REDIS_URL has the parameter {name!r}, which ssehub cannot pass on from a URL")
        if name == "ssl_cert_reqs" and values[0] not in _CERT_REQS:
            raise ValueError(f"REDIS_URL's ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
        try:
            if parser is not None:
                parser(values[0])
        except (TypeError, ValueError):
            raise ValueError(f"REDIS_URL's {name}={values[0]!r} is not a value {name} takes") from None


def _host(text: str, default_port: int) -> tuple[str, int]:
    match = _HOST.match(text)
    if match is None:
        raise ValueError(f"REDIS_URL has a host that is not a host[:port]: {text!r}; it must look like {FORMS}")
    port = int(match["port"] or default_port)
    if not 0 < port < 65536:
        raise ValueError(f"REDIS_URL has a port that is not a number from 1 to 65535: {port}")
    return match["host"], port
