"""Connection limits and deadlines, over raw sockets (issue 9, item 3)."""

import socket

import gevent

from tests.conftest import wait_for
from tests.sse import StreamReader


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        while sock.recv(65536):
            pass  # pywsgi may answer 400 before it closes
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_slowloris_connections_are_dropped_at_the_head_timeout_and_others_are_served(live, capfd):
    server = live(request_head_timeout=0.5)
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]

    def trickle():
        for sock in slow:
            sock.sendall(b"GET /events?channel=news HTTP/1.1\r\nHost: x\r\n")
        for _ in range(20):  # a header byte every 0.1 s: each read is quick, the head never ends
            gevent.sleep(0.1)
            for sock in slow:
                try:
                    sock.sendall(b"X")
                except OSError:
                    pass

    trickling = gevent.spawn(trickle)
    assert server.request("GET", "/healthz")[0] == 200
    wait_for(lambda: all(closed_by_server(sock) for sock in slow), timeout=15, message="slow heads dropped")
    trickling.kill()
    for sock in slow:
        sock.close()
    assert "Traceback" not in capfd.readouterr().err  # routine on the internet: no traceback each


def test_a_subscriber_that_stops_reading_is_dropped_at_the_write_timeout(live, capfd):
    server = live(write_timeout=0.5, client_queue=100_000)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", server.port))
    stuck.sendall(b"GET /events?channel=news HTTP/1.1\r\nHost: x\r\n\r\n")  # and never reads
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    wait_for(lambda: server.app.hub.subscriber_count == 2, message="both subscribed")
    for n in range(60):
        server.publish("news", f"{n}:" + "x" * 60_000)
    wait_for(lambda: server.app.hub.subscriber_count == 1, message="the stuck subscriber to be dropped")
    assert server.app.limits.open == 1
    assert len(reader.take(60, timeout=20)) == 60  # the reading one got everything meanwhile
    stuck.close()
    assert "Traceback" not in capfd.readouterr().err


def test_streams_past_the_per_client_limit_get_retry_and_end_while_healthz_answers(live):
    server = live(max_streams_per_client=3, max_streams=5)
    held = [StreamReader("127.0.0.1", server.port, "/events?channel=news") for _ in range(3)]
    for reader in held:
        reader.read_until(lambda r: r.parser.last_event_id)
    fourth = server.stream("channel=news").read_to_end()
    assert fourth.status == 200 and fourth.parser.retry == 10_000
    assert fourth.parser.comments == [" this address has 3 streams open already; reconnect later"]
    assert server.request("GET", "/healthz")[0] == 200
    held[0].close()
    wait_for(lambda: server.app.limits.open == 2, message="a slot to free up")
    server.stream("channel=news").read_until(lambda r: r.parser.last_event_id)


def test_the_process_limit_turns_away_every_client(live):
    server = live(max_streams_per_client=0, max_streams=2)
    for _ in range(2):
        server.stream("channel=news").read_until(lambda r: r.parser.last_event_id)
    refused = server.stream("channel=news").read_to_end()
    assert refused.parser.comments == [" the hub is at its limit of 2 streams; reconnect later"]
    assert server.request("GET", "/healthz")[0] == 200
    assert server.app.limits.refused == 1


def test_accepted_connections_send_without_waiting_for_delayed_acks(live):
    # Regression (issue 12): without TCP_NODELAY every response waited ~40 ms.
    server = live()
    # Two channels: the stream keeps its handler (one-channel streams leave it once live).
    server.stream("channel=news&channel=sport").read_until(lambda r: r.parser.last_event_id)
    # gevent runs each connection as _handle_and_close_when_done(handle, close, (socket, address)).
    accepted = [handler.args[2][0] for handler in server.handlers]
    assert accepted and all(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for sock in accepted)
