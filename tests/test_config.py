import ipaddress

import pytest

from ssehub.config import Config, ConfigError


def test_defaults_match_the_design():
    config = Config.from_env({})
    assert (config.port, config.host, config.history_size, config.heartbeat_seconds) == (5000, "0.0.0.0", 1000, 15.0)
    assert (config.max_event_bytes, config.redis_url, config.publish_token) == (65536, None, None)


def test_every_setting_is_read():
    config = Config.from_env(
        {
            "PORT": "8080",
            "HOST": "127.0.0.1",
            "REDIS_URL": "rediss://:pw@cache.example:6380/2",
            "PUBLISH_TOKEN": "t",
            "SECRET_KEY": "0123456789abcdef0123",
            "CHAT_CHANNELS": "chat, lobby",
            "ALLOWED_ORIGINS": "https://a.example, https://b.example/",
            "HISTORY_SIZE": "50",
            "HEARTBEAT_SECONDS": "2.5",
            "RETRY_MS": "500",
            "MAX_EVENT_BYTES": "1024",
            "CLIENT_QUEUE": "10",
            "TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
            "REQUEST_HEAD_TIMEOUT": "5",
            "WRITE_TIMEOUT": "7.5",
            "MAX_STREAMS_PER_CLIENT": "0",
            "MAX_STREAMS": "500",
        }
    )
    assert config == Config(
        port=8080,
        host="127.0.0.1",
        redis_url="rediss://:pw@cache.example:6380/2",
        publish_token="t",
        secret_key="0123456789abcdef0123",
        chat_channels=("chat", "lobby"),
        allowed_origins=("https://a.example", "https://b.example"),
        history_size=50,
        heartbeat_seconds=2.5,
        retry_ms=500,
        max_event_bytes=1024,
        client_queue=10,
        trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")),
        request_head_timeout=5.0,
        write_timeout=7.5,
        max_streams_per_client=0,
        max_streams=500,
    )


@pytest.mark.parametrize(
    "env, name",
    [
        ({"PORT": "0"}, "PORT"),
        ({"HEARTBEAT_SECONDS": "0"}, "HEARTBEAT_SECONDS"),
        ({"HEARTBEAT_SECONDS": "nan"}, "HEARTBEAT_SECONDS"),
        ({"REDIS_URL": "redis://host:notaport"}, "REDIS_URL"),
        ({"ALLOWED_ORIGINS": "https://a.example/path"}, "ALLOWED_ORIGINS"),
        ({"MAX_EVENT_BYTES": "-5"}, "MAX_EVENT_BYTES"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"CHAT_CHANNELS": "ok, not ok"}, "CHAT_CHANNELS"),
        ({"PUBLISH_TOKEN": "s3cret-token\n"}, "PUBLISH_TOKEN"),
        ({"PUBLISH_TOKEN": "   "}, "PUBLISH_TOKEN"),
        ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"),
        ({"TRUSTED_PROXIES": "router.internal"}, "TRUSTED_PROXIES"),
        ({"REQUEST_HEAD_TIMEOUT": "0"}, "REQUEST_HEAD_TIMEOUT"),
        ({"MAX_STREAMS": "0"}, "MAX_STREAMS"),
    ],
)
def test_a_bad_value_names_the_variable(env, name):
    with pytest.raises(ConfigError, match=f"^{name}"):
        Config.from_env(env)


def test_chat_can_be_turned_off():
    assert Config.from_env({"CHAT_CHANNELS": ""}).chat_channels == ()


def test_trusted_proxies_star_trusts_every_peer():
    networks = Config.from_env({"TRUSTED_PROXIES": "*"}).trusted_proxies
    assert all(any(ipaddress.ip_address(a) in n for n in networks) for a in ("203.0.113.7", "2001:db8::1"))
