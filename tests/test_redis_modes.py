"""Issue 13, item 4: a managed Redis that refuses FUNCTION LOAD still serves
every guarantee, the start says how, and a Redis before 7 stops it."""

import logging
import os
import shlex
import signal

import pytest
import webtest

from ssehub.brokers.redis_library import LIBRARY_PATH
from ssehub.brokers.redis_writes import idempotency_record
from tests.conftest import wait_for
from tests.redis_server import RedisServer
from tests.service_process import ROOT, Service

REDIS6 = os.path.join(ROOT, ".cache", "redis6", "redis-server")
NO_FUNCTIONS = ("-function", "-fcall", "-fcall_ro")  # as some managed services configure it
NO_SCRIPTS = ("-function|load", "-eval", "-eval_ro", "-evalsha", "-evalsha_ro", "-script")


def modes_logged(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "ssehub" and "Redis mode" in r.getMessage()]


def assert_publishes_and_streams(server):
    """Live events, a resume from an id, and readiness, over whatever commands the mode uses."""
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    ids = [server.publish("news", f"e{n}") for n in range(3)]
    assert [(m.data, m.last_event_id) for m in reader.take(3)] == [(f"e{n}", ids[n]) for n in range(3)]
    resumed = server.stream("channel=news", {"Last-Event-ID": ids[0]})
    assert [m.data for m in resumed.take(2)] == ["e1", "e2"]
    status, body = server.request("GET", "/readyz")
    assert status == 200, body


def test_a_user_who_may_not_use_functions_publishes_and_streams_with_scripts(live, clean_redis, caplog):
    url = clean_redis.url_for_user("scripts", *NO_FUNCTIONS)
    with caplog.at_level(logging.INFO, logger="ssehub"):
        server = live(redis_url=url)
        assert_publishes_and_streams(server)
    [mode] = modes_logged(caplog)
    assert mode.startswith("Redis mode: EVALSHA scripts, because FUNCTION LOAD was refused (")
    assert "no admin loaded this version of ssehub.lua" in mode


def test_a_library_an_admin_loaded_is_used_when_the_hub_may_not_load_it(live, clean_redis, caplog):
    with open(LIBRARY_PATH) as library:
        clean_redis.client().function_load(library.read())  # redis-cli -x FUNCTION LOAD REPLACE < ssehub.lua
    url = clean_redis.url_for_user("admin-loaded", *NO_SCRIPTS)
    with caplog.at_level(logging.INFO, logger="ssehub"):
        server = live(redis_url=url)
        assert_publishes_and_streams(server)
    assert modes_logged(caplog) == [
        "Redis mode: functions loaded by an admin, because FUNCTION LOAD was refused "
        "(this user has no permissions to run the 'function|load' command)"
    ]


def test_another_version_of_the_library_loaded_by_an_admin_is_not_used(make_app, clean_redis, caplog):
    older = "#!lua name=ssehub\nredis.register_function('ssehub_publish', function() return '1-1' end)\n"
    clean_redis.client().function_load(older)
    url = clean_redis.url_for_user("scripts", "-function|load")
    with caplog.at_level(logging.INFO, logger="ssehub"):
        client = webtest.TestApp(make_app(redis_url=url), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
        published = client.post_json("/publish", {"channel": "news", "data": "x"}, status=201).json["id"]
    assert published != "1-1" and clean_redis.client().xlen("ssehub:{news}") == 1
    assert modes_logged(caplog)[0].startswith("Redis mode: EVALSHA scripts")


def test_scripts_survive_a_redis_restart_that_empties_the_script_cache(live, own_redis):
    server = live(redis_url=own_redis.url_for_user("scripts", *NO_FUNCTIONS))
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    before = server.publish("news", "before")
    own_redis.restart()  # the append-only file keeps the events, not the scripts or the ACL user
    own_redis.url_for_user("scripts", *NO_FUNCTIONS)
    wait_for(lambda: server.request("GET", "/readyz")[0] == 200, message="ready after the restart")
    after = server.publish("news", "after")
    assert [(m.data, m.last_event_id) for m in reader.take(2)] == [("before", before), ("after", after)]


def test_a_redis_before_7_stops_the_start_with_one_line(tmp_path):
    if not os.path.exists(REDIS6):
        pytest.fail(f"{REDIS6} is missing: `make test` downloads it")
    old = RedisServer(str(tmp_path), binary=REDIS6).start()
    service = Service({"REDIS_URL": old.url})
    try:
        assert service.process.wait(timeout=20) == 2
        assert service.output().strip().splitlines()[-1] == (
            "ssehub: REDIS_URL names Redis 6.2.14; ssehub needs Redis 7.0 or newer (Functions and sharded pub/sub)"
        )
    finally:
        service.stop()
        old.stop()


def documented_acls():
    with open(os.path.join(ROOT, "README.md")) as readme:
        return [line.strip() for line in readme if line.startswith("ACL SETUSER ssehub ")]


@pytest.mark.parametrize(
    "acl, mode", list(zip(documented_acls(), ["functions (the hub", "EVALSHA scripts"], strict=True))
)
def test_the_acls_the_readme_documents_are_enough(live, clean_redis, caplog, acl, mode):
    admin = clean_redis.client()
    admin.execute_command(*shlex.split(acl))
    try:
        with caplog.at_level(logging.INFO, logger="ssehub"):
            server = live(redis_url=clean_redis.url.replace("redis://", "redis://ssehub:change-me@"))
            assert_publishes_and_streams(server)
            body, once = {"channel": "news", "data": "once"}, {"Idempotency-Key": "k"}
            assert server.request("POST", "/publish", body, once) == server.request("POST", "/publish", body, once)
        assert modes_logged(caplog)[0].startswith(f"Redis mode: {mode}")
    finally:
        admin.acl_deluser("ssehub")


def test_a_library_an_older_hub_loads_meanwhile_still_publishes_and_announces_once(live, clean_sentinels):
    """In a rolling deploy an old hub reloads its ssehub.lua, which ignores notify=0 and
    announces the event itself, returning the id alone (issue 13 review)."""
    server = live(redis_url=clean_sentinels.url)
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    with open(LIBRARY_PATH) as library:
        current = library.read()
    older = current.replace(
        "local notify = args[5] ~= '0'\n  local with_previous = args[5] == '0' or args[5] == '2'",
        "local notify = true\n  local with_previous = false",
    )
    assert older != current
    clean_sentinels.primary().client().function_load(older, replace=True)
    ids = [server.publish("news", f"e{n}") for n in range(3)]
    assert [(m.last_event_id, m.data) for m in reader.take(3)] == [(ids[n], f"e{n}") for n in range(3)]
    reader.read_until(lambda r: r.raw.endswith(b":\n\n"))  # a heartbeat after them: nothing came twice
    assert len(reader.messages) == 3


def test_a_repeated_key_writes_so_a_wait_after_it_covers_the_first_publish(clean_sentinels):
    """Redis documents WAIT as covering the writes of its own connection: a repeat that
    wrote nothing, on a pooled connection older than the first publish, could then be
    acknowledged while that publish had not reached the replica, and answered 201 for an
    event a failover could still lose. (Redis 7.0.15 waits for the newest offset anyway.)"""
    primary, replica = clean_sentinels.primary(), clean_sentinels.replica()
    with open(LIBRARY_PATH) as library:
        primary.client().function_load(library.read(), replace=True)
    key = "ssehub:{news}"
    keys = (key, idempotency_record(key, "order-17"))
    publish = ("ssehub_publish", 2, *keys, "once", "", "", "", "0", "order-17", "fingerprint")
    retry = primary.client()  # a pooled connection, opened before the first publish
    assert retry.execute_command("WAIT", 1, 5000) == 1  # the replica has all there is so far
    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        first_id, _ = primary.client().fcall(*publish)  # stored; the stopped replica has not got it
        assert retry.fcall(*publish) == [first_id, b""]  # a repeat
        assert retry.execute_command("WAIT", 1, 300) == 0  # not acknowledged: the replica is stopped
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)
