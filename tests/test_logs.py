"""Issue 14, item 7: request ids, LOG_LEVEL and LOG_FORMAT=json, never a token."""

import json

import pytest

from tests.conftest import wait_for
from tests.service_process import Service
from tests.sse import StreamReader
from tests.tokens import SECRET, mint


@pytest.mark.parametrize("given", ["abc.123_X-9", "r" * 200])
def test_a_well_formed_request_id_comes_back(testapp, given):
    assert testapp.get("/healthz", headers={"X-Request-ID": given}).headers["X-Request-ID"] == given


@pytest.mark.parametrize("given", [None, "", "has space", "r" * 201, "semi;colon"])
def test_otherwise_the_hub_makes_one(testapp, given):
    headers = {"X-Request-ID": given} if given is not None else {}
    made = testapp.get("/no-such-page", headers=headers, status=404).headers["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0


def test_a_stream_answers_with_its_request_id(live):
    reader = live().stream("channel=news", {"X-Request-ID": "stream-1"})
    assert reader.status == 200 and reader.headers["X-Request-ID"] == "stream-1"


def test_json_lines_parse_carry_the_request_id_and_never_a_token():
    token = mint(subscribe=["news"], publish=["news"])
    hub = Service({"LOG_FORMAT": "json", "ACCESS_LOG": "1", "JWT_SECRET": SECRET, "PUBLIC_CHANNELS": "open"})
    try:
        hub.wait_listening()
        reader = StreamReader("127.0.0.1", hub.port, f"/events?channel=news&token={token}", {"X-Request-ID": "s-1"})
        reader.read_until(lambda r: r.parser.last_event_id)
        bearer = {"Authorization": f"Bearer {token}", "X-Request-ID": "p-1"}
        assert hub.request("POST", "/publish", {"channel": "news", "data": "x"}, bearer)[0] == 201
        assert hub.request("GET", f"/events?channel=private&token={token}x", headers={"X-Request-ID": "r-1"})[0] == 401
        reader.close()
        wait_for(lambda: '"r-1"' in hub.output() and '"s-1"' in hub.output(), message="the access lines")
        lines = [json.loads(line) for line in hub.output().splitlines()]
        assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
        access = {line["request_id"]: line for line in lines if line["logger"] == "ssehub.access"}
        assert (access["p-1"]["method"], access["p-1"]["status"], access["p-1"]["path"]) == ("POST", 201, "/publish")
        assert access["r-1"]["status"] == 401 and "[redacted]" in access["r-1"]["path"]
        assert {"client", "bytes", "duration_ms"} <= set(access["s-1"])
        assert token.split(".")[1] not in hub.output() and token[-20:] not in hub.output()
    finally:
        hub.stop()


def test_log_level_warning_leaves_out_the_info_lines():
    hub = Service({"LOG_LEVEL": "warning"})
    try:
        wait_for(lambda: "PUBLISH_TOKEN is unset" in hub.output(), timeout=20, message="the warning")
        assert "listening on" not in hub.output() and " INFO " not in hub.output()
    finally:
        hub.stop()


def test_a_request_id_shaped_like_a_token_is_replaced(testapp):
    token = mint(subscribe=["news"])
    made = testapp.get("/healthz", headers={"X-Request-ID": token[:200]}).headers["X-Request-ID"]
    assert made != token[:200] and len(made) == 32
