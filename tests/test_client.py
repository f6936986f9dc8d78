"""Issue 14, item 2: the publisher clients, whose retries never publish twice."""

import gevent
import pytest

from ssehub.client import Publisher, PublishError, RedisPublisher
from tests.redis_proxy import RedisProxy


def delaying_first_publish(seconds):
    """WSGI middleware: the first POST /publish is done, but answered only after `seconds`."""

    def wrap(app):
        delayed = []

        def middleware(environ, start_response):
            body = app(environ, start_response)
            if environ["PATH_INFO"] == "/publish" and not delayed:
                delayed.append(True)
                gevent.sleep(seconds)
            return body

        return middleware

    return wrap


@pytest.fixture(params=["memory", "redis"])
def broker_settings(request):
    return {"redis_url": request.getfixturevalue("clean_redis").url} if request.param == "redis" else {}


def test_a_publish_whose_answer_comes_after_the_timeout_is_retried_and_delivered_once(live, broker_settings):
    server = live(wrapper=delaying_first_publish(1.5), **broker_settings)
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    hub = Publisher(server.url, timeout=0.5)
    event_id = hub.publish("news", {"order": 17})
    assert [(m.data, m.last_event_id) for m in reader.take(1)] == [('{"order":17}', event_id)]
    assert [m.last_event_id for m in reader.read_until(lambda r: r.raw.endswith(b":\n\n")).messages] == [event_id]
    assert [e.data for e in server.app.broker.recent("news", 10)] == ['{"order":17}']
    hub.close()


def test_publish_many_reuses_one_connection_and_returns_the_ids_in_order(live):
    server = live()
    reader = server.stream("channel=a")
    reader.read_until(lambda r: r.parser.last_event_id)
    hub = Publisher(server.url + "/")
    ids = hub.publish_many([{"channel": "a", "data": "1"}, {"channel": "a", "data": "2", "event": "kind"}])
    ids.append(hub.publish("a", "3"))
    assert [(m.data, m.type) for m in reader.take(3)] == [("1", "message"), ("2", "kind"), ("3", "message")]
    assert [m.last_event_id for m in reader.messages] == ids
    assert len(server.handlers) <= 2  # the stream and one publishing connection
    hub.close()


def test_a_refusal_raises_at_once_with_the_hubs_reason(live):
    server = live(publish_token="the-token")
    with pytest.raises(PublishError, match="401") as refused:
        Publisher(server.url, token="wrong").publish("news", "x")
    assert refused.value.status == 401
    with pytest.raises(PublishError, match="channel"):
        Publisher(server.url, token="the-token").publish("bad channel!", "x")
    assert Publisher(server.url, token="the-token").publish("news", "x")


def test_the_redis_publisher_retries_a_lost_reply_and_stores_the_event_once(live, clean_redis):
    server = live(redis_url=clean_redis.url)
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    proxy = RedisProxy(clean_redis.port)
    try:
        publisher = RedisPublisher(proxy.url)
        proxy.drop_reply_to = b"ssehub_publish"
        event_id = publisher.publish("news", "through redis")
        assert proxy.dropped == 1
        assert [(m.data, m.last_event_id) for m in reader.take(1)] == [("through redis", event_id)]
        assert clean_redis.client().xlen("ssehub:{news}") == 1
        assert publisher.publish_many([{"channel": "news", "data": "more"}]) != [event_id]
        publisher.close()
    finally:
        proxy.stop()


def test_one_publisher_shared_by_many_greenlets_stores_each_event_once(live):
    server = live()
    hub = Publisher(server.url)
    jobs = [gevent.spawn(hub.publish, "news", f"order {n}") for n in range(20)]
    gevent.joinall(jobs, timeout=10, raise_error=True)
    assert len({job.value for job in jobs}) == 20
    assert sorted(e.data for e in server.app.broker.recent("news", 100)) == sorted(f"order {n}" for n in range(20))


def test_when_retries_run_out_the_error_carries_the_key_to_publish_again_with(live):
    server = live()
    hub = Publisher("http://127.0.0.1:1", timeout=0.2, retry_seconds=0.5)  # nothing listens there
    with pytest.raises(PublishError, match="idempotency_key=") as failed:
        hub.publish("news", "x", idempotency_key="order-17")
    assert failed.value.idempotency_key == "order-17" and failed.value.status is None
    again = Publisher(server.url)
    assert again.publish("news", "x", idempotency_key="order-17") == again.publish(
        "news", "x", idempotency_key="order-17"
    )


def test_the_redis_publisher_refuses_a_bad_event_at_once(clean_redis):
    publisher = RedisPublisher(clean_redis.url)
    for channel, event in (("bad channel!", None), ("news", "ssehub.forged")):
        with pytest.raises(PublishError) as refused:
            publisher.publish(channel, "x", event)
        assert refused.value.status == 400
    publisher.close()
