"""A real Redis Cluster for tests: 3 primaries and 3 replicas on free loopback ports.

    cluster = ClusterNodes(str(tmp_path)).start()
    cluster.failover(cluster.replica_of(cluster.primary_for("ssehub:{a}")))
    cluster.stop()

Topology is always read back from Redis (CLUSTER NODES), never assumed."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time

import redis
from redis.crc import key_slot

from tests.redis_nodes import CLUSTER_SLOTS, Node, NotYet, binary, fields, free_ports, wait_ping, wait_until


@dataclasses.dataclass(frozen=True)
class ClusterEntry:
    """One line of CLUSTER NODES."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    link: str
    slots: tuple[tuple[int, int], ...]

    @property
    def is_primary(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return "fail" in self.flags

    @property
    def slot_count(self) -> int:
        return sum(end - start + 1 for start, end in self.slots)

    def owns(self, slot: int) -> bool:
        return any(start <= slot <= end for start, end in self.slots)


def parse_cluster_nodes(text: str) -> dict[int, ClusterEntry]:
    entries = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split(",")[0].split("@")[0]
        port = int(address.rsplit(":", 1)[1] or 0)
        flags = frozenset(fields[2].split(",")) - {"myself"}
        slots = []
        for item in fields[8:]:
            if item.startswith("["):  # a slot migrating or importing
                continue
            start, _, end = item.partition("-")
            slots.append((int(start), int(end or start)))
        master_id = None if fields[3] == "-" else fields[3]
        entries[port] = ClusterEntry(fields[0], port, flags, master_id, fields[7], tuple(sorted(slots)))
    return entries


class ClusterMember(Node):
    def __init__(self, parent: str, port: int, bus_port: int):
        super().__init__(parent, "cluster", port)
        self.bus_port = bus_port
        self.nodes_conf = os.path.join(self.directory, f"nodes-{port}.conf")


class ClusterNodes:
    """A Redis Cluster of `primaries` primaries with `replicas_per_primary` replicas each.

    Every node has its own directory (nodes-<port>.conf, the log, any RDB of a full sync) and a
    cluster bus port chosen free as well (`cluster-port`), not port + 10000, which may be taken
    or past 65535.
    """

    def __init__(self, directory: str, primaries: int = 3, replicas_per_primary: int = 1, node_timeout_ms: int = 1000):
        if primaries < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 primaries")
        self.binary = binary("redis-server")
        self.cli = binary("redis-cli")
        self.directory = directory
        self.primary_count = primaries
        self.replicas_per_primary = replicas_per_primary
        self.node_timeout_ms = node_timeout_ms
        taken: set[int] = set()
        count = primaries * (1 + replicas_per_primary)
        ports = free_ports(count, taken)
        bus_ports = free_ports(count, taken)
        self.nodes = [ClusterMember(directory, port, bus) for port, bus in zip(ports, bus_ports, strict=True)]
        self.urls = [node.url for node in self.nodes]
        self.url = ""  # the primaries as created, in the comma form; set by start()
        self.create_output = ""

    def __enter__(self) -> ClusterNodes:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _launch(self, node: ClusterMember) -> None:
        node.launch_server(
            self.binary,
            *("--cluster-enabled", "yes", "--cluster-port", str(node.bus_port)),
            *("--cluster-config-file", node.nodes_conf, "--cluster-node-timeout", str(self.node_timeout_ms)),
            # A replica may always be promoted, however long it was cut off from its primary:
            # tests fail over right after restarts and resyncs, where the default (10) refuses.
            *("--cluster-replica-validity-factor", "0"),
        )

    def start(self, timeout: float = 30) -> ClusterNodes:
        try:
            for node in self.nodes:
                self._launch(node)
            wait_ping(self.nodes)
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            created = subprocess.run(
                [self.cli, "--cluster", "create", *addresses]
                + ["--cluster-replicas", str(self.replicas_per_primary), "--cluster-yes"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            self.create_output = created.stdout + created.stderr
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{self.create_output[-3000:]}")
            self.wait_ok(timeout)
            self.url = "redis://" + ",".join(f"127.0.0.1:{node.port}" for node in self.primaries())
            return self
        except BaseException:
            self.stop()
            raise

    # --- what the cluster says now

    def _view_of(self, node: Node) -> dict[int, ClusterEntry]:
        return parse_cluster_nodes(node.command("CLUSTER", "NODES"))

    def view(self) -> dict[int, ClusterEntry]:
        """CLUSTER NODES of the first live node that answers, by port."""
        errors = []
        for node in self.nodes:
            if node.alive:
                try:
                    return self._view_of(node)
                except (redis.RedisError, OSError) as error:
                    errors.append(f"{node!r}: {error}")
        raise RuntimeError(f"no live cluster node answers CLUSTER NODES: {errors}")

    def node(self, port: int) -> ClusterMember:
        for node in self.nodes:
            if node.port == port:
                return node
        raise LookupError(f"no node of this cluster on port {port}")

    def primaries(self) -> list[ClusterMember]:
        """The nodes that own slots now, by their first slot; a node flagged fail is left out."""
        entries = [e for e in self.view().values() if e.is_primary and e.slots and not e.failed]
        return [self.node(e.port) for e in sorted(entries, key=lambda e: e.slots[0])]

    def replicas(self) -> list[ClusterMember]:
        """The nodes that replicate a primary now, by port; a node flagged fail is left out."""
        entries = [e for e in self.view().values() if not e.is_primary and e.master_id and not e.failed]
        return [self.node(e.port) for e in sorted(entries, key=lambda e: e.port)]

    def primary_for(self, key: str | bytes) -> ClusterMember:
        """The node that owns the key's slot now (whether or not it is alive)."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        for entry in self.view().values():
            if entry.is_primary and entry.owns(slot):
                return self.node(entry.port)
        raise LookupError(f"no node owns slot {slot} of {key!r}")

    def replica_of(self, primary: Node) -> ClusterMember:
        """A replica of `primary` now (the lowest port), not flagged fail."""
        view = self.view()
        primary_id = view[primary.port].node_id
        found = sorted(e.port for e in view.values() if e.master_id == primary_id and not e.failed)
        if not found:
            raise LookupError(f"{primary!r} has no replica")
        return self.node(found[0])

    # --- waiting for agreement

    def _settled(self) -> dict[int, ClusterEntry]:
        """Raise NotYet unless every live node reports the same healthy cluster; return its view."""
        live = [node for node in self.nodes if node.alive]
        if not live:
            raise NotYet("no node is running")
        live_ports = {node.port for node in live}
        agreed: tuple | None = None
        agreed_view: dict[int, ClusterEntry] = {}
        for node in live:
            info = fields(node.command("CLUSTER", "INFO"))
            for field, wanted in (
                ("cluster_state", "ok"),
                ("cluster_slots_assigned", str(CLUSTER_SLOTS)),
                ("cluster_slots_ok", str(CLUSTER_SLOTS)),
                ("cluster_known_nodes", str(len(self.nodes))),
            ):
                if info.get(field) != wanted:
                    raise NotYet(f"{node!r} CLUSTER INFO {field}:{info.get(field)}")
            view = self._view_of(node)
            for port in live_ports:
                entry = view.get(port)
                if entry is None:
                    raise NotYet(f"{node!r} does not know live node {port}")
                if entry.flags & {"fail", "fail?", "handshake", "noaddr"} or entry.link != "connected":
                    raise NotYet(f"{node!r} sees live node {port} as {sorted(entry.flags)} {entry.link}")
            for port, entry in view.items():
                if port not in live_ports and not entry.failed:
                    raise NotYet(f"{node!r} does not yet flag dead node {port} fail: {sorted(entry.flags)}")
                if entry.slots and port not in live_ports:
                    raise NotYet(f"{node!r} has dead node {port} owning slots")
            owned = sum(e.slot_count for e in view.values() if e.is_primary)
            if owned != CLUSTER_SLOTS:
                raise NotYet(f"{node!r} sees {owned} slots owned")
            ids = {e.node_id: port for port, e in view.items()}
            shape = tuple(
                sorted((port, e.is_primary, ids.get(e.master_id or ""), e.slots, e.failed) for port, e in view.items())
            )
            if agreed is None:
                agreed, agreed_view = shape, view
            elif shape != agreed:
                raise NotYet(f"{node!r} disagrees with {live[0]!r} about the cluster")
        # Every live replica is in sync with the primary the cluster gives it.
        ids = {e.node_id: port for port, e in agreed_view.items()}
        for node in live:
            entry = agreed_view[node.port]
            if entry.is_primary:
                continue
            role = node.command("ROLE")
            if role[0] != "slave" or int(role[2]) != ids.get(entry.master_id or "") or role[3] != "connected":
                raise NotYet(f"{node!r} ROLE {role}")
        return agreed_view

    def wait_ok(self, timeout: float = 30) -> dict[int, ClusterEntry]:
        """Wait until every live node says cluster_state:ok, all 16384 slots are owned by live nodes,
        every live node reports the same topology (dead nodes flagged fail) and every live replica's
        link to its primary is up. Returns the agreed CLUSTER NODES view, by port."""
        return wait_until(self._settled, timeout, "the cluster to settle", [n for n in self.nodes if n.alive])

    # --- changing it

    def failover(self, replica: Node, timeout: float = 30) -> None:
        """CLUSTER FAILOVER on `replica` (a coordinated manual failover, which its primary must
        answer); wait until it is a primary and every live node agrees (see wait_ok)."""
        entry = self.view()[replica.port]
        if entry.is_primary:
            raise ValueError(f"{replica!r} is a primary already")
        deadline = time.monotonic() + timeout
        asked = 0.0

        def promoted() -> None:
            nonlocal asked
            # A manual failover the primary does not complete in 5 s (CLUSTER_MF_TIMEOUT) is
            # abandoned; ask again then.
            if time.monotonic() - asked > 6:
                asked = time.monotonic()
                replica.command("CLUSTER", "FAILOVER")
            view = self._settled()
            if not (view[replica.port].is_primary and view[replica.port].slots):
                raise NotYet(f"{replica!r} is not a primary yet")

        wait_until(promoted, max(0.0, deadline - time.monotonic()), f"{replica!r} to take over", [replica])

    def kill(self, node: Node) -> None:
        """SIGKILL one node."""
        node.kill()

    def restart(self, node: ClusterMember, timeout: float = 30) -> None:
        """Start `node` again on its port with its nodes.conf, so it rejoins with its old identity
        (a primary that was failed over comes back as a replica); wait until it is connected and
        the cluster has settled (wait_ok)."""
        node.kill()
        self._launch(node)
        wait_ping([node])
        self.wait_ok(timeout)

    def restart_all(self, timeout: float = 30) -> None:
        """Kill every node and start them all again with their nodes.conf: the
        whole cluster down, then back (its data lost: no persistence)."""
        for node in self.nodes:
            node.kill()
        for node in self.nodes:
            self._launch(node)
        wait_ping(self.nodes)
        self.wait_ok(timeout)

    def move_slot_of(self, key: str, target: ClusterMember, pause: float = 1.0) -> None:
        """Migrate the slot of `key` to the primary `target` as redis-cli --cluster reshard does
        (IMPORTING/MIGRATING, MIGRATE its keys, SETSLOT NODE), pausing `pause` seconds after
        the keys moved, while the source answers ASK; then wait until the cluster agrees."""
        slot = key_slot(key.encode())
        source = self.primary_for(key)
        view = self.view()
        source_id, target_id = view[source.port].node_id, view[target.port].node_id
        target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while keys := source.command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            source.command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        time.sleep(pause)
        for node in (target, source):
            node.command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self.wait_ok()

    def flush(self) -> None:
        """Forget every key and function on every primary, as a restart without persistence does."""
        for node in self.primaries():
            node.command("FLUSHALL")
            node.command("FUNCTION", "FLUSH")

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
