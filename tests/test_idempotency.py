"""Issue 14, item 3: POST /publish with an Idempotency-Key stores an event once
however often it is retried, on either broker and across hub processes."""

import pytest
import webtest

from tests.tokens import SECRET, mint

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture(params=["memory", "redis"])
def hub(request, make_app):
    """A hub's app under WebTest, on either broker."""
    settings = {"jwt_secret": SECRET, "public_channels": ("*",)}
    if request.param == "redis":
        settings["redis_url"] = request.getfixturevalue("clean_redis").url
    return webtest.TestApp(make_app(**settings), extra_environ=LOCAL)


def publish(client, body, key=None, status=201, **headers):
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post_json("/publish", body, headers=headers, status=status).json


def history(client, channel):
    return [e.data for e in client.app.broker.recent(channel, 100)]


def test_the_same_key_twice_returns_the_first_id_and_stores_the_event_once(hub):
    first = publish(hub, {"channel": "news", "data": "once"}, key="order-17")
    again = publish(hub, {"channel": "news", "data": "once"}, key="order-17")
    assert again == first
    other = publish(hub, {"channel": "news", "data": "once"}, key="order-18")
    assert other["id"] != first["id"]
    assert history(hub, "news") == ["once", "once"]


def test_the_same_key_with_another_body_is_a_422_and_stores_nothing(hub):
    publish(hub, {"channel": "news", "data": "first"}, key="k")
    reply = publish(hub, {"channel": "news", "data": "second"}, key="k", status=422)
    assert "Idempotency-Key was used for another publish" in reply["error"] and reply["published"] == []
    reply = publish(hub, [{"channel": "news", "data": "first"}, {"channel": "b", "data": "x"}], key="k", status=422)
    assert history(hub, "news") == ["first"] and history(hub, "b") == []


def test_a_batch_that_changed_under_its_key_stores_nothing_even_on_new_channels(hub):
    publish(hub, [{"channel": "a", "data": "1"}, {"channel": "b", "data": "2"}], key="order-17")
    changed = [{"channel": "c", "data": "1"}, {"channel": "b", "data": "2, changed"}]
    assert publish(hub, changed, key="order-17", status=422)["published"] == []
    assert history(hub, "c") == [] and history(hub, "b") == ["2"]


def test_a_retried_batch_stores_each_event_once_and_answers_the_same_ids(hub):
    batch = [{"channel": "a", "data": "1"}, {"channel": "b", "data": "2"}, {"channel": "a", "data": "3"}]
    first = publish(hub, batch, key="batch-1")
    assert publish(hub, batch, key="batch-1") == first
    assert history(hub, "a") == ["1", "3"] and history(hub, "b") == ["2"]


def test_a_refused_request_is_not_remembered(hub):
    token = mint(publish=["allowed"])
    bearer = {"Authorization": f"Bearer {token}"}
    publish(hub, {"channel": "elsewhere", "data": "x"}, key="k", status=403, **bearer)
    publish(hub, {"channel": "allowed", "data": "x"}, key="k", **bearer)
    assert history(hub, "allowed") == ["x"]


def test_keys_are_scoped_to_the_credential_that_sent_them(hub):
    for subject in ("alice", "bob"):
        bearer = {"Authorization": f"Bearer {mint(publish=['news'], sub=subject)}"}
        publish(hub, {"channel": "news", "data": "same"}, key="shared", **bearer)
    publish(hub, {"channel": "news", "data": "same"}, key="shared")  # local, a third scope
    assert history(hub, "news") == ["same"] * 3


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "caf\u00e9"])
def test_a_malformed_key_is_a_400(hub, key):
    reply = hub.post_json("/publish", {"channel": "news", "data": "x"}, headers={"Idempotency-Key": key}, status=400)
    assert "Idempotency-Key must be 1-255 visible ASCII characters" in reply.json["error"]


def test_keys_are_shared_by_every_hub_process_on_one_redis(make_app, clean_redis):
    hubs = [webtest.TestApp(make_app(redis_url=clean_redis.url), extra_environ=LOCAL) for _ in range(2)]
    ids = {publish(hub, {"channel": "news", "data": "x"}, key="k")["id"] for hub in hubs}
    assert len(ids) == 1 and clean_redis.client().xlen("ssehub:{news}") == 1
