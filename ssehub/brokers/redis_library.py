"""How ssehub.lua runs on a Redis: as a Functions library, or as scripts.

Managed Redis services often refuse FUNCTION LOAD (issue 13, item 4). The hub
then uses the library an admin loaded, when it is this very text, or else
runs each function as an EVALSHA script cut from the same file: one Lua
source serves every mode, and Redis applies the same checks (OOM, READONLY,
ACL keys) to a script with a shebang as to a function.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re

import redis

from . import BrokerUnavailable
from .redis_clients import NOT_ONE_REDIS, Client

# The first Redis with Functions and sharded pub/sub.
MIN_REDIS_MAJOR = 7
LIBRARY_PATH = os.path.join(os.path.dirname(__file__), "ssehub.lua")
LIBRARY_NAME = "ssehub"

# A function's key, or its keys (a publish with an idempotency key declares its record too).
Keys = str | tuple[str, ...]
# "ssehub: Redis mode: ..." after the log prefix (issue 13, item 4).
mode_logger = logging.getLogger("ssehub")

_REGISTRATION = re.compile(
    r"^redis\.register_function(?:\('(?P<name>\w+)', (?P<callback>\w+)\)"
    r"|\{function_name = '(?P<name2>\w+)', callback = (?P<callback2>\w+), flags = \{'no-writes'\}\})$",
    re.MULTILINE,
)


class RedisTooOld(BrokerUnavailable):
    """The Redis server lacks Functions and sharded pub/sub: it will not do, however long the hub waits."""


class Library:
    """ssehub.lua and the commands that run its functions in the current mode."""

    def __init__(self, source: str):
        self.source = source
        self.read_only: set[str] = set()
        self._scripts: dict[str, str] = {}
        body = _REGISTRATION.sub("", source.split("\n", 1)[1])
        for match in _REGISTRATION.finditer(source):
            name = match["name"] or match["name2"]
            callback = match["callback"] or match["callback2"]
            flags = "" if match["name"] else " flags=no-writes"
            if match["name2"]:
                self.read_only.add(name)
            self._scripts[name] = f"#!lua{flags}\n{body}\nreturn {callback}(KEYS, ARGV)\n"
        self._sha = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in self._scripts.items()}
        self.as_scripts = False
        self.mode: str | None = None  # until prepared on a connection

    def command(self, name: str, key: Keys, *args) -> tuple:
        """The command that runs function `name` on `key` (or keys) in the current mode."""
        keys = (key,) if isinstance(key, str) else key
        read_only = name in self.read_only
        if self.as_scripts:
            return ("EVALSHA_RO" if read_only else "EVALSHA", self._sha[name], len(keys), *keys, *args)
        return ("FCALL_RO" if read_only else "FCALL", name, len(keys), *keys, *args)

    def instead_of_missing(
        self, error: redis.ResponseError, client: Client, name: str, key: str | tuple[str, ...], *args
    ):
        """What to run after Redis answered that the function is missing, which
        means it did not run: the script's text, or the command again once the
        library is loaded. None when `error` is another refusal."""
        if self.as_scripts and isinstance(error, redis.exceptions.NoScriptError):
            keys = (key,) if isinstance(key, str) else key
            return ("EVAL_RO" if name in self.read_only else "EVAL", self._scripts[name], len(keys), *keys, *args)
        if not self.as_scripts and "Function not found" in str(error):
            self.prepare(client)
            return self.command(name, key, *args)
        return None

    def prepare(self, client: Client) -> None:
        """On each connection: check each primary, load the library there, or
        choose the admin's library or scripts, and say so when the mode
        changes. Primaries that do not answer are skipped (they get the library
        when a publish there finds it missing), unless none answers."""
        cluster = isinstance(client, redis.RedisCluster)
        if isinstance(client, redis.RedisCluster):
            nodes = [client.get_redis_connection(node) for node in client.get_primaries()]
        else:
            nodes = [client]
        modes, unreachable = [], None
        for node in nodes:
            try:
                modes.append(self._prepare_node(node, cluster))
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as error:
                if not cluster:
                    raise
                unreachable = error  # down, loading or busy: its slots are not ready, the others are
        if not modes:
            raise BrokerUnavailable.because(unreachable or redis.ConnectionError("no primary"))
        as_scripts, mode = max(modes)  # scripts wherever any primary needs them
        self._use(as_scripts, mode)

    def _prepare_node(self, node: redis.Redis, cluster: bool) -> tuple[bool, str]:
        check_server(node, cluster)
        try:
            node.function_load(self.source, replace=True)
        except redis.ResponseError as error:
            if not _refused(error):
                raise  # out of memory, read-only, loading: not ready, and not a mode
            refused = f"FUNCTION LOAD was refused ({error})"
            if self._loaded_by_admin(node):
                return False, f"functions loaded by an admin, because {refused}"
            return True, f"EVALSHA scripts, because {refused} and no admin loaded this version of ssehub.lua"
        return False, "functions (the hub loads ssehub.lua)"

    def _loaded_by_admin(self, node: redis.Redis) -> bool:
        """Whether `node` has this very ssehub.lua."""
        try:
            libraries = node.function_list(library=LIBRARY_NAME, withcode=True)
        except redis.ResponseError:
            return False  # FUNCTION LIST refused too: which version is loaded cannot be known
        return any(reply_field(library, "library_code") == self.source for library in libraries)

    def _use(self, as_scripts: bool, mode: str) -> None:
        self.as_scripts = as_scripts
        if mode != self.mode:
            self.mode = mode
            mode_logger.info("Redis mode: %s", mode)


def library_source() -> str:
    """ssehub.lua as shipped: every hub loads the same text (its settings go with each publish)."""
    with open(LIBRARY_PATH) as source:
        return source.read()


def check_server(node: redis.Redis, cluster: bool) -> None:
    """Raise RedisTooOld below Redis 7, and BrokerUnavailable for a cluster's node
    taken for a single Redis; HELLO answers for any user, unlike INFO."""
    try:
        hello = node.execute_command("HELLO")
    except redis.ResponseError as error:
        if "unknown command" in str(error).lower():
            raise RedisTooOld(f"REDIS_URL names a Redis before 6; ssehub needs Redis {MIN_REDIS_MAJOR}.0+") from None
        raise
    version = reply_field(hello, "version") or "0"
    if int(version.split(".")[0]) < MIN_REDIS_MAJOR:
        raise RedisTooOld(
            f"REDIS_URL names Redis {version}; ssehub needs Redis {MIN_REDIS_MAJOR}.0 or newer "
            "(Functions and sharded pub/sub)"
        )
    if reply_field(hello, "mode") == "cluster" and not cluster:
        raise BrokerUnavailable(NOT_ONE_REDIS)


def _refused(error: redis.ResponseError) -> bool:
    """FUNCTION LOAD forbidden for this user or on this service, as opposed to failing now
    (out of memory, read-only, loading)."""
    if isinstance(error, redis.exceptions.NoPermissionError):
        return True
    if isinstance(error, redis.exceptions.OutOfMemoryError | redis.exceptions.ReadOnlyError):
        return False
    text = str(error).lower()
    return "unknown command" in text or "unknown subcommand" in text or "not allowed" in text


def reply_field(reply: list | dict, name: str) -> str | None:
    """A field of a reply (HELLO's, FUNCTION LIST's) that is a map in RESP3 and a flat list in RESP2."""
    fields = dict(zip(reply[::2], reply[1::2], strict=False)) if isinstance(reply, list) else reply
    value = fields.get(name.encode(), fields.get(name))
    return value.decode() if isinstance(value, bytes) else value
