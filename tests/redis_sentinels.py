"""A real Sentinel-watched pair for tests: a primary, a replica and three Sentinels.

    sentinels = SentinelSet(str(tmp_path)).start()
    sentinels.failover()
    sentinels.stop()

Topology is always read back from Redis (SENTINEL GET-MASTER-ADDR-BY-NAME), never assumed."""

from __future__ import annotations

import os
import time

import redis

from tests.redis_nodes import Node, NotYet, binary, free_ports, no_retry, pairs, wait_ping, wait_until


class SentinelSet:
    """A primary, one replica (`--replicaof`), and three sentinels (quorum 2) watching them as `service`."""

    def __init__(self, directory: str, service: str = "mymaster", down_after_ms: int = 1000):
        self.binary = binary("redis-server")
        self.directory = directory
        self.service = service
        self.down_after_ms = down_after_ms
        taken: set[int] = set()
        ports = free_ports(5, taken)
        self.nodes = [Node(directory, "redis", port) for port in ports[:2]]
        self.sentinels = [Node(directory, "sentinel", port) for port in ports[2:]]
        self.sentinel_ports = [sentinel.port for sentinel in self.sentinels]
        addresses = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        self.url = f"redis+sentinel://{addresses}/{service}"

    def __enter__(self) -> SentinelSet:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _launch(self, node: Node, primary: Node | None) -> None:
        replicaof = ["--replicaof", "127.0.0.1", str(primary.port)] if primary is not None else []
        node.launch_server(self.binary, *replicaof)

    def _launch_sentinel(self, sentinel: Node, primary: Node) -> None:
        conf = os.path.join(sentinel.directory, "sentinel.conf")
        with open(conf, "w") as handle:
            handle.write(
                f"port {sentinel.port}\n"
                "bind 127.0.0.1\n"
                f"dir {sentinel.directory}\n"
                f"logfile {sentinel.log}\n"
                "sentinel resolve-hostnames no\n"
                f"sentinel monitor {self.service} 127.0.0.1 {primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service} 5000\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
        sentinel.launch([self.binary, conf, "--sentinel"])

    def start(self, timeout: float = 30) -> SentinelSet:
        primary, replica = self.nodes
        try:
            self._launch(primary, None)
            wait_ping([primary])
            self._launch(replica, primary)
            # The replica in sync before the sentinels start: they learn of replicas from the
            # primary's INFO, which they ask for on connecting and then only every 10 s.
            wait_until(lambda: self._in_sync(replica, primary), timeout, "the replica to sync", self.nodes)
            for sentinel in self.sentinels:
                self._launch_sentinel(sentinel, primary)
            wait_ping(self.sentinels)
            wait_until(lambda: self._watched(primary, replica), timeout, "the sentinels to see both", self.sentinels)
            return self
        except BaseException:
            self.stop()
            raise

    # --- what Redis and the sentinels say now

    def node(self, port: int) -> Node:
        for node in self.nodes:
            if node.port == port:
                return node
        raise LookupError(f"no Redis node of this set on port {port}")

    def _sentinel_primary(self, sentinel: Node) -> Node:
        answer = sentinel.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        if not answer:
            raise NotYet(f"{sentinel!r} knows no {self.service}")
        return self.node(int(answer[1]))

    def flush(self) -> None:
        """Forget every key and function, as a restart without persistence does; the replica follows."""
        primary = self.primary()
        primary.command("FLUSHALL")
        primary.command("FUNCTION", "FLUSH")
        primary.command("WAIT", 1, 5000)

    def primary(self) -> Node:
        """The node the first sentinel that answers gives as the primary now."""
        errors = []
        for sentinel in self.sentinels:
            if sentinel.alive:
                try:
                    return self._sentinel_primary(sentinel)
                except (redis.RedisError, OSError, NotYet) as error:
                    errors.append(f"{sentinel!r}: {error}")
        raise RuntimeError(f"no sentinel answers for {self.service}: {errors}")

    def replica(self) -> Node:
        """The node that is not the primary (see primary())."""
        primary = self.primary()
        return next(node for node in self.nodes if node is not primary)

    def _in_sync(self, replica: Node, primary: Node) -> None:
        info = replica.info("replication")
        if (
            info.get("role") != "slave"
            or info.get("master_port") != str(primary.port)
            or info.get("master_link_status") != "up"
        ):
            raise NotYet(f"{replica!r} replication: {info}")

    def _watched(self, primary: Node, replica: Node) -> None:
        """Raise NotYet unless every live sentinel has `primary` as the primary, in good health, and
        `replica` as a replica not down, and sees every other live sentinel."""
        live = [sentinel for sentinel in self.sentinels if sentinel.alive]
        for sentinel in live:
            if self._sentinel_primary(sentinel) is not primary:
                raise NotYet(f"{sentinel!r} has not switched to {primary!r}")
            master = pairs(sentinel.command("SENTINEL", "MASTER", self.service))
            if master.get("flags") != "master":
                raise NotYet(f"{sentinel!r} flags the primary {master.get('flags')}")
            replicas = {
                int(entry["port"]): entry
                for entry in map(pairs, sentinel.command("SENTINEL", "REPLICAS", self.service))
            }
            seen = replicas.get(replica.port)
            if seen is None or seen.get("flags") != "slave" or seen.get("master-link-status") != "ok":
                raise NotYet(f"{sentinel!r} sees {replica!r} as {seen}")
            others = [pairs(entry) for entry in sentinel.command("SENTINEL", "SENTINELS", self.service)]
            healthy = [entry for entry in others if entry.get("flags") == "sentinel"]
            if len(healthy) < len(live) - 1:
                raise NotYet(f"{sentinel!r} sees {len(healthy)} other healthy sentinels: {others}")

    def _switched(self, primary: Node) -> None:
        """Raise NotYet unless `primary` says it is one and every live sentinel gives it."""
        role = primary.command("ROLE")
        if role[0] != "master":
            raise NotYet(f"{primary!r} ROLE {role}")
        for sentinel in self.sentinels:
            if sentinel.alive and self._sentinel_primary(sentinel) is not primary:
                raise NotYet(f"{sentinel!r} has not switched to {primary!r}")

    def wait_primary(self, primary: Node, timeout: float = 30) -> None:
        """Wait until `primary` says it is one, every live sentinel gives it as the primary, and the
        other node, if running, replicates it with its link up.

        The sentinels' own view of that replica may lag: they ask a replica for INFO every 10 s."""
        others = [node for node in self.nodes if node is not primary and node.alive]

        def settled() -> None:
            self._switched(primary)
            for other in others:
                self._in_sync(other, primary)

        wait_until(settled, timeout, f"{primary!r} to be the primary", [primary, *others])

    # --- changing it

    def failover(self, timeout: float = 30, demote_at_once: bool = False) -> Node:
        """SENTINEL FAILOVER; wait until the sentinels give the other node as the primary, it says
        it is one, and the old primary replicates it with its link up. Returns the new primary.

        Sentinel promotes the replica within about a second, but turns the old primary (which
        keeps its clients and takes writes meanwhile) into a replica only about 10 s later: it
        waits 8 s after the role change it saw, then for its next INFO of a replica (every 10 s).
        `demote_at_once` does that conversion as soon as the sentinels have switched, as Sentinel
        would (REPLICAOF, then CLIENT KILL TYPE normal and pubsub), for tests that need not wait."""
        old = self.primary()
        new = next(node for node in self.nodes if node is not old)
        sentinel = next(s for s in self.sentinels if s.alive)
        deadline = time.monotonic() + timeout

        def ask() -> None:
            try:
                sentinel.command("SENTINEL", "FAILOVER", self.service)
            except redis.ResponseError as error:
                # NOGOODSLAVE until the sentinel has fresh INFO from the replica.
                if "INPROG" not in str(error):
                    raise NotYet(str(error)) from None

        wait_until(ask, timeout, f"{sentinel!r} to start a failover", [sentinel])
        if demote_at_once:
            wait_until(lambda: self._switched(new), timeout, f"{new!r} to be promoted", [new])
            if old.alive:
                _demote(old, new)
        self.wait_primary(new, max(0.0, deadline - time.monotonic()))
        return new

    def kill(self, node: Node) -> None:
        """SIGKILL one node (Redis or sentinel)."""
        node.kill()

    def _seen_up(self, node: Node) -> None:
        """Raise NotYet unless every live sentinel lists `node` as a replica not down or disconnected."""
        for sentinel in self.sentinels:
            if not sentinel.alive:
                continue
            replicas = {int(e["port"]): e for e in map(pairs, sentinel.command("SENTINEL", "REPLICAS", self.service))}
            flags = set(replicas.get(node.port, {}).get("flags", "unknown").split(","))
            if flags & {"unknown", "s_down", "o_down", "disconnected"}:
                raise NotYet(f"{sentinel!r} flags {node!r} {sorted(flags)}")

    def restart(self, node: Node, timeout: float = 30) -> None:
        """Start a killed node again on its port: a sentinel with its (rewritten) config, a Redis
        node as a replica of the primary the sentinels give now (or as the primary, if it is it).
        Wait until it is in sync and the sentinels see it up."""
        node.kill()
        if node in self.sentinels:
            node.launch([self.binary, os.path.join(node.directory, "sentinel.conf"), "--sentinel"])
            wait_ping([node])

            def sees_others() -> None:
                others = node.command("SENTINEL", "SENTINELS", self.service)
                healthy = [e for e in map(pairs, others) if e.get("flags") == "sentinel"]
                if len(healthy) < sum(1 for s in self.sentinels if s.alive) - 1:
                    raise NotYet(f"{node!r} sees {others}")

            wait_until(sees_others, timeout, f"{node!r} to rejoin", [node])
            return
        primary = self.primary()
        self._launch(node, None if primary is node else primary)
        wait_ping([node])
        deadline = time.monotonic() + timeout
        self.wait_primary(primary, timeout)
        if node is not primary:
            wait_until(lambda: self._seen_up(node), max(0.0, deadline - time.monotonic()), f"{node!r} seen up", [node])

    def stop(self) -> None:
        for node in [*self.sentinels, *self.nodes]:
            node.kill()


def _demote(node: Node, primary: Node, timeout: float = 2) -> None:
    """What Sentinel sends a node it makes a replica: REPLICAOF, CLIENT KILL of the clients it had."""
    connection = redis.Connection(
        host="127.0.0.1",
        port=node.port,
        protocol=2,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=no_retry(),
    )
    commands: list[tuple] = [
        ("MULTI",),
        ("REPLICAOF", "127.0.0.1", primary.port),
        ("CLIENT", "KILL", "TYPE", "normal"),
        ("CLIENT", "KILL", "TYPE", "pubsub"),
        ("EXEC",),
    ]
    try:
        for command in commands:
            connection.send_command(*command)
            connection.read_response()
    finally:
        connection.disconnect()
