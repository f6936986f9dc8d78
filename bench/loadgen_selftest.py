"""Sanity test of bench/loadgen against a fake SSE server that is awkward on purpose.

The fake server splits chunked framing and SSE lines anywhere across TCP
segments, mixes LF, CRLF and CR line endings, sends comments, id-only blocks,
named non-payload events and multi-line data, answers publishes with
Content-Length, chunked or closing responses, and can inject duplicates,
reordering, loss, stream ends (to exercise --reconnect and Last-Event-ID) and
rejected publishes. Builds bench/loadgen if it is missing or stale.

    python bench/loadgen_selftest.py
"""

import json
import os
import queue
import random
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "loadgen.c")
BINARY = os.path.join(HERE, "loadgen")
SEQ = re.compile(r"s=(\d+) ")


def build():
    if not os.path.exists(BINARY) or os.path.getmtime(BINARY) < os.path.getmtime(SOURCE):
        subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-o", BINARY, SOURCE, "-lm"], check=True)


class Hub:
    """Per-channel history (ids 1, 2, ...) and the queues of open streams."""

    def __init__(self, reject_every=0):
        self.lock = threading.Lock()
        self.history = {}
        self.streams = {}
        self.publishes = 0
        self.reject_every = reject_every
        self.resumed_from = []


def frame(event_id, data, n):
    """One event as SSE text, wrapped in things a parser must ignore."""
    eol = ("\r\n", "\n", "\r")[n % 3]
    text = ""
    if n % 4 == 0:
        text += f": keep-alive{eol}{eol}"
    if n % 5 == 0:
        text += f'event: ssehub.reset{eol}data: {{"channel":"x"}}{eol}{eol}'
    if n % 7 == 0:
        text += f"data: first line{eol}data: {data}{eol}{eol}"  # two data lines: not a payload
    text += f"id: {event_id}{eol}event: message{eol}data: {data}{eol}{eol}"
    if n % 6 == 0:
        text += f"id: {event_id}{eol}{eol}"  # id-only block
    return text.encode()


def chunked(body, rng):
    """`body` as HTTP chunks of 1-9 bytes, some with an extension."""
    out = b""
    while body:
        size = rng.randint(1, 9)
        extension = b";x=1" if rng.random() < 0.2 else b""
        out += b"%x%s\r\n%s\r\n" % (len(body[:size]), extension, body[:size])
        body = body[size:]
    return out


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.request.makefile("rb")
        self.rng = random.Random(self.client_address[1])
        while True:
            line = self.reader.readline()
            if not line:
                return
            method, target, _ = line.decode().split(" ", 2)
            headers = {}
            while (line := self.reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            if method != "POST":
                return self.stream(target, headers)
            if not self.publish(headers):
                return

    def send_split(self, data):
        """Send in random pieces, each its own segment, so reads split anywhere."""
        while data:
            size = self.rng.randint(1, 40)
            self.request.sendall(data[:size])
            data = data[size:]
            time.sleep(0.0002)

    def publish(self, headers):
        hub = self.server.hub
        message = json.loads(self.reader.read(int(headers["content-length"])))
        with hub.lock:
            hub.publishes += 1
            n = hub.publishes
            rejected = hub.reject_every and n % hub.reject_every == 0
            if not rejected:
                history = hub.history.setdefault(message["channel"], [])
                history.append(message["data"])
                for stream in hub.streams.get(message["channel"], []):
                    stream.put((len(history), message["data"]))
        if rejected:
            self.request.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy")
            return True
        body = b'{"id":"%d"}' % n
        if n % 3 == 0:
            self.send_split(
                b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, self.rng) + b"0\r\n\r\n"
            )
            return True
        close = n % 6 == 4  # the publisher must reconnect after this answer
        head = b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n" % len(body)
        self.send_split(head + (b"Connection: close\r\n" if close else b"") + b"\r\n" + body)
        return not close

    def stream(self, target, headers):
        hub = self.server.hub
        url = urlsplit(target)
        if url.path != "/events":
            self.request.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        query = parse_qs(url.query)
        channel, mode = query["channel"][0], query["mode"][0]
        last_id = headers.get("last-event-id")
        events = queue.Queue()
        with hub.lock:  # replay and subscribe at once: nothing falls in between
            history = hub.history.setdefault(channel, [])
            if last_id:
                hub.resumed_from.append(last_id)
                for event_id in range(int(last_id) + 1, len(history) + 1):
                    events.put((event_id, history[event_id - 1]))
            position = len(history)
            hub.streams.setdefault(channel, []).append(events)
        encode = (lambda body: chunked(body, self.rng)) if mode != "identity" else (lambda body: body)
        framing = b"Connection: close\r\n" if mode == "identity" else b"Transfer-Encoding: chunked\r\n"
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" + framing + b"\r\n")
        sent, held = 0, None
        try:
            self.send_split(encode(b"retry: 500\n: hello\n\n" + (b"" if last_id else b"id: %d\n\n" % position)))
            if mode == "drop" and not last_id:
                # Resuming must start from that id-only block's id.
                return self.send_split(b"0\r\n\r\n")
            while True:
                event_id, data = events.get()
                seq = int(SEQ.match(data)[1])
                out = [(event_id, data)]
                if mode == "chaos":  # seq 2 twice, 5 before 4, no 6
                    out = {2: out * 2, 4: [], 5: out + [held or out[0]], 6: []}.get(seq, out)
                    held = (event_id, data) if seq == 4 else held
                for n, (event_id, data) in enumerate(out, sent):
                    self.send_split(encode(frame(event_id, data, n)))
                sent += 1
                if mode == "drop" and sent % 10 == 0:
                    self.send_split(b"0\r\n\r\n")  # the last chunk: the stream ends
                    return
        finally:
            with hub.lock:
                hub.streams[channel].remove(events)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # loadgen exits mid-stream
            super().handle_error(request, client_address)


def run_loadgen(mode, args, reject_every=0):
    """Run loadgen (`args` split at spaces) against a fresh fake server; its summary, phases and hub."""
    server = Server(("127.0.0.1", 0), Handler)
    server.hub = Hub(reject_every)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    command = [BINARY, "--port", str(server.server_address[1]), "--settle", "0.3", "--drain-timeout", "5"]
    command += ["--sub-path", f"/events?channel={{channel}}&mode={mode}", *args.split()]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    phases = [json.loads(line) for line in done.stderr.splitlines()]
    return json.loads(done.stdout), phases, server.hub


def check(name, summary, **expected):
    wrong = {key: (summary[key], value) for key, value in expected.items() if summary[key] != value}
    assert not wrong, f"{name}: (got, expected) {wrong}\n{json.dumps(summary, indent=1)}"
    print(f"ok  {name}")


def main():
    build()
    clean = dict(lost=0, duplicates=0, out_of_order=0, unacked_received=0, foreign=0, publish_errors=0)

    summary, phases, _ = run_loadgen("chunked", "--subscribers 6 --channels 2 --events 40")
    check("chunked, split anywhere", summary, delivered=240, expected_deliveries=240, published_acked=80, **clean)
    assert [p["phase"] for p in phases] == ["connecting", "all_live", "publishing", "published", "drained"], phases

    # Two publishers may reach the server out of seq order, so out_of_order is not checked.
    summary, _, _ = run_loadgen("identity", "--subscribers 4 --events 30 --publishers 2")
    check("identity stream", summary, delivered=120, expected_deliveries=120, lost=0, duplicates=0, foreign=0)

    summary, _, _ = run_loadgen("chaos", "--subscribers 3 --events 20")
    check("duplicate, reordered, lost", summary, delivered=57, lost=3, duplicates=3, out_of_order=3)

    args = "--subscribers 4 --channels 2 --events 50 --rate 200 --reconnect --connect-timeout 5"
    summary, _, hub = run_loadgen("drop", args)
    # live_at_end is not checked: the fake hub may have just ended a stream when the run ends.
    check("stream ends, resume by Last-Event-ID", summary, delivered=200, **clean)
    assert summary["reconnects"] >= 16 and len(summary["all_live_times"]) >= 2, summary
    assert summary["first_drop_time"] is not None and hub.resumed_from.count("0") == 4, (summary, hub.resumed_from)

    summary, _, _ = run_loadgen("chunked", "--subscribers 2 --events 30", reject_every=7)
    check("rejected publishes", summary, published_acked=26, publish_errors=4, delivered=52, lost=0)

    summary, phases, _ = run_loadgen("chunked", "--subscribers 2 --hold 0.2")
    check("hold", summary, published_attempted=0, live_at_end=2)
    assert [p["phase"] for p in phases] == ["connecting", "all_live"], phases

    summary, _, _ = run_loadgen("chunked", "--subscribers 3 --events 0 --sub-path /missing")
    check("non-200 is a connect failure", summary, connect_failures=3, live_at_end=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
