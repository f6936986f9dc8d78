import ipaddress
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from ssehub.config import Config, ConfigError
from ssehub.redis_url import parse_redis_url
from tests.tokens import ec_key, public_pem, rsa_key


def test_defaults_match_the_design():
    config = Config.from_env({})
    assert (config.port, config.host, config.history_size, config.heartbeat_seconds) == (5000, "0.0.0.0", 1000, 15.0)
    assert (config.max_event_bytes, config.redis_url, config.publish_token) == (65536, None, None)


@pytest.mark.parametrize(
    "url, described",
    [
        ("redis://127.0.0.1", "redis://127.0.0.1:6379/0"),
        ("rediss://user:p%40ss@h1:7000,h2,[::1]:7002/0?ssl_cert_reqs=none", "rediss://h1:7000,h2:6379,[::1]:7002/0"),
        ("redis+sentinel://:pw@s1,s2:26380/mymaster/2", "redis+sentinel://s1:26379,s2:26380/mymaster/2"),
        ("rediss+sentinel://s1/mymaster", "rediss+sentinel://s1:26379/mymaster/0"),
    ],
)
def test_every_form_of_redis_url_is_read_and_described_without_its_credentials(url, described):
    assert Config.from_env({"REDIS_URL": url}).redis_url == url
    assert parse_redis_url(url).describe() == described


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
            "PUBLISH_ACK": "primary",
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
        publish_ack="primary",
    )


@pytest.mark.parametrize(
    "env, name",
    [
        ({"PORT": "0"}, "PORT"),
        ({"HEARTBEAT_SECONDS": "0"}, "HEARTBEAT_SECONDS"),
        ({"HEARTBEAT_SECONDS": "nan"}, "HEARTBEAT_SECONDS"),
        ({"REDIS_URL": "redis://host:notaport"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://h1:6379,:6380"}, "REDIS_URL"),
        ({"REDIS_URL": "redis+sentinel://h1:26379,h2:26379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis+sentinel://h1:26379/mymaster/zero"}, "REDIS_URL"),
        ({"REDIS_URL": "unix:///tmp/redis.sock"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://h?ssl_cert_reqs=none"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://h?socket_timeout=abc"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://h?sockettimeout=1"}, "REDIS_URL"),
        ({"PUBLISH_ACK": "none"}, "PUBLISH_ACK"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
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


def test_a_jwt_key_makes_every_channel_private_unless_listed():
    secret = "s" * 32
    assert Config.from_env({}).readable_without_token == ("*",)
    assert Config.from_env({"JWT_SECRET": secret}).readable_without_token == ()
    listed = Config.from_env({"JWT_SECRET": secret, "PUBLIC_CHANNELS": "news.*, lobby"})
    assert listed.readable_without_token == ("news.*", "lobby")


def test_a_public_key_may_hold_its_newlines_escaped():
    pem = public_pem(rsa_key())
    escaped = pem.strip().replace("\n", "\\n")
    assert Config.from_env({"JWT_PUBLIC_KEY": escaped}).jwt_public_key == pem
    assert Config.from_env({"JWT_PUBLIC_KEY": pem}).jwt_public_key == pem


def _private_key_pem() -> str:
    return (
        ec_key()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )


def _weak_rsa_pem() -> str:
    return public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))


@pytest.mark.parametrize(
    "env, message",
    [
        ({"JWT_SECRET": "too-short"}, "JWT_SECRET is too short"),
        ({"JWT_SECRET": "s" * 40 + "\n"}, "JWT_SECRET has leading or trailing whitespace"),
        ({"JWT_PUBLIC_KEY": "not a key"}, "JWT_PUBLIC_KEY is not a PEM public key"),
        ({"JWT_PUBLIC_KEY": _private_key_pem()}, "JWT_PUBLIC_KEY is not a PEM public key"),
        ({"JWT_PUBLIC_KEY": _weak_rsa_pem()}, "JWT_PUBLIC_KEY is an RSA key of 1024 bits"),
        ({"JWT_PUBLIC_KEY": public_pem(ec.generate_private_key(ec.SECP384R1()))}, "JWT_PUBLIC_KEY must be an RSA"),
        ({"PUBLIC_CHANNELS": "news"}, "PUBLIC_CHANNELS needs JWT_SECRET or JWT_PUBLIC_KEY"),
        ({"JWT_AUDIENCE": "hub.example"}, "JWT_AUDIENCE needs JWT_SECRET or JWT_PUBLIC_KEY"),
        ({"JWT_ISSUER": "https://app.example"}, "JWT_ISSUER needs JWT_SECRET or JWT_PUBLIC_KEY"),
        ({"JWT_SECRET": "s" * 32, "PUBLIC_CHANNELS": "news*x"}, "PUBLIC_CHANNELS: invalid channel pattern"),
    ],
)
def test_bad_token_settings_stop_the_start_naming_the_setting(env, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        Config.from_env(env)


URL_PIECES = st.sampled_from(
    [
        "redis://",
        "rediss://",
        "redis+sentinel://",
        "rediss+sentinel://",
        "h",
        ":",
        "@",
        ",",
        "/",
        "?",
        "=",
        "&",
        "[",
        "]",
    ]
    + ["::1", "6379", "99999", "mymaster", "ssl_cert_reqs", "none", "socket_timeout", "x", "%", " ", "\n"]
)


@given(st.one_of(st.text(max_size=60), st.lists(URL_PIECES, max_size=12).map("".join)))
def test_any_redis_url_is_read_or_refused_with_one_line_naming_it(raw):
    try:
        Config.from_env({"REDIS_URL": raw})
    except ConfigError as error:
        assert "REDIS_URL" in str(error) and "\n" not in str(error)
