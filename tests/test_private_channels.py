"""Private channels (issue 11): tokens decide who reads which channel.

Refusals that can never succeed are 401/403 JSON; an expired token is a 200
that says so, on connect and at expiry on an open stream, so that
EventSource clients fetch a new token and resume exactly.
"""

import base64
import io
import json
import logging
import time
import urllib.parse

import jwt
import pytest
import webtest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssehub.channels import ChannelPatterns, check_pattern
from ssehub.tokens import LEEWAY_SECONDS
from tests.sse import parse
from tests.tokens import SECRET, ec_key, hs256_with, mint, public_pem, rsa_key, unsigned

EXPIRED = "ssehub.token-expired"
ORIGIN = "https://app.example"


@pytest.fixture
def private(make_app):
    """WebTest over a hub with a JWT secret, where only news.* is public."""

    def start(**settings):
        settings = {"jwt_secret": SECRET, "public_channels": ("news.*",), **settings}
        return webtest.TestApp(make_app(**settings), extra_environ={"REMOTE_ADDR": "127.0.0.1"})

    return start


def sent(token: str, where: str) -> tuple[str, dict[str, str]]:
    """The query to add (&token=...) and the headers that present `token` in the header, cookie or query."""
    if where == "header":
        return "", {"Authorization": f"Bearer {token}"}
    if where == "cookie":
        return "", {"Cookie": f"ssehub_token={token}"}
    return f"&token={token}", {}


def refused(app: webtest.TestApp, status: int, query: str = "channel=user.42", **kwargs) -> str:
    """The error of a refused /events request, checked to be JSON with `status`
    (asked as a long poll from a given id, so a wrong 200 ends at once)."""
    response = app.get(f"/events?{query}&ssehub_poll=1&lastEventId=0-0", status=status, **kwargs)
    assert response.content_type == "application/json"
    return response.json["error"]


@pytest.mark.parametrize(
    "pattern, covered, not_covered",
    [
        ("user.42", ["user.42"], ["user.4", "user.420", "user"]),
        ("user.4", ["user.4"], ["user.42"]),
        ("news.*", ["news.sport", "news.a.b"], ["news", "news.", "newsroom"]),
        ("news*", ["newsroom", "news.sport"], ["news"]),
        ("*", ["a", "news", "user.42"], []),
    ],
)
def test_patterns_cover_exact_names_and_prefixes(pattern, covered, not_covered):
    patterns = ChannelPatterns((check_pattern(pattern),))
    assert all(patterns.covers(channel) for channel in covered)
    assert not any(patterns.covers(channel) for channel in not_covered)


@pytest.mark.parametrize("pattern", ["", "**", "news*.sport", "*news", "a b", "news/*", 5, None, "x" * 129 + "*"])
def test_a_pattern_is_a_name_a_prefix_or_a_star(pattern):
    with pytest.raises(ValueError, match="invalid channel pattern"):
        check_pattern(pattern)


def test_no_token_for_a_private_channel_is_a_401_saying_how_to_send_one(private):
    app = private()
    response = app.get("/events?channel=user.42", status=401)
    assert "private channel" in response.json["error"] and "?token=" in response.json["error"]
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")


@pytest.mark.parametrize(
    "make_token, reason",
    [
        (lambda: mint(["user.42"], key="another-secret-of-at-least-32-bytes!"), "signature"),
        (lambda: unsigned({"sub": "x", "ssehub": {"subscribe": ["*"]}}), "'none'"),
        (lambda: "not-a-token", "not a JWT"),
        (lambda: mint(["user.42"])[:-6], "signature"),
        (lambda: mint(["user.42"]).replace(".", "", 1), "not a JWT"),
        (lambda: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.e30" + "A" * 70_000, "longer than"),
        (lambda: mint(["user.42"], nbf=time.time() + 60), "not valid yet"),
        (lambda: mint(["user.42"], iat=time.time() + 60), "not valid yet"),
        (lambda: mint(None, ssehub={"subscribe": "user.42"}), "list of channel patterns"),
        (lambda: mint(None, ssehub={"subscribe": ["user.*.x"]}), "invalid channel pattern"),
        (lambda: mint(None, ssehub=["user.42"]), "must be an object"),
        (lambda: mint(["user.42"], exp="tomorrow", lifetime=0), "exp must be a number"),
    ],
)
def test_a_token_that_cannot_be_used_as_sent_is_a_401_saying_why(private, make_token, reason):
    """(Tokens are made when the test runs: their times are relative to now.)"""
    app = private()
    assert reason in refused(app, 401, f"channel=user.42&token={make_token()}")


def test_rs256_tokens_verify_with_the_public_key_and_hs256_made_with_its_text_is_refused(private):
    pem = public_pem(rsa_key())
    app = private(jwt_secret=None, jwt_public_key=pem)
    claims = {"sub": "x", "exp": time.time() + 60, "ssehub": {"subscribe": ["user.42"]}}
    assert "refused here" in refused(app, 401, f"channel=user.42&token={hs256_with(pem, claims)}")
    assert "refused here" in refused(app, 401, f"channel=user.42&token={mint(['user.42'])}")
    token = mint(["user.42"], key=rsa_key(), algorithm="RS256")
    assert app.get(f"/events?channel=user.42&token={token}&ssehub_poll=1&lastEventId=0-0").status_code == 200


def test_with_both_keys_each_algorithm_uses_its_own_key(private):
    pem = public_pem(ec_key())
    app = private(jwt_public_key=pem)
    claims = {"sub": "x", "exp": time.time() + 60, "ssehub": {"subscribe": ["user.42"]}}
    assert "signature" in refused(app, 401, f"channel=user.42&token={hs256_with(pem, claims)}")
    for token in (mint(["user.42"]), mint(["user.42"], key=ec_key(), algorithm="ES256")):
        assert app.get(f"/events?channel=user.42&token={token}&ssehub_poll=1&lastEventId=0-0").status_code == 200
    assert "refused here" in refused(app, 401, f"channel=user.42&token={mint(['*'], key=rsa_key(), algorithm='RS256')}")


def test_audience_and_issuer_are_checked_when_set(private):
    app = private(jwt_audience="hub.example", jwt_issuer="https://app.example")
    good = {"aud": "hub.example", "iss": "https://app.example"}
    for claims, reason in (
        ({**good, "aud": "other"}, "aud must include"),
        ({"iss": "https://app.example"}, "lacks the 'aud' claim"),
        ({**good, "iss": "https://evil.example"}, "iss must be"),
    ):
        assert reason in refused(app, 401, f"channel=user.42&token={mint(['user.42'], **claims)}")
    token = mint(["user.42"], **good)
    assert app.get(f"/events?channel=user.42&token={token}&ssehub_poll=1&lastEventId=0-0").status_code == 200


def test_a_token_that_does_not_cover_a_channel_is_a_403_naming_it(private):
    app = private()
    assert "'user.43'" in refused(app, 403, f"channel=user.43&token={mint(['user.42'])}")
    # One of two requested channels is not covered: that one is named.
    error = refused(app, 403, f"channel=user.42&channel=team.7&token={mint(['user.42'])}")
    assert "'team.7'" in error and "'user.42'" not in error
    # Patterns from the claim: user.4 never covers user.42, news-like prefixes need more characters.
    assert "'user.42'" in refused(app, 403, f"channel=user.42&token={mint(['user.4', 'user.42.*'])}")


def test_checks_run_in_order_signature_coverage_expiry(private):
    app = private()
    expired_elsewhere = mint(["user.43"], lifetime=-60)
    assert "'user.42'" in refused(app, 403, f"channel=user.42&token={expired_elsewhere}")
    bad_and_expired = mint(["user.42"], lifetime=-60, key="x" * 40)
    assert "signature" in refused(app, 401, f"channel=user.42&token={bad_and_expired}")


def test_an_expired_token_is_a_200_telling_the_client_to_refresh(private):
    app = private()
    response = app.get(f"/events?channel=user.42&token={mint(['user.42'], lifetime=-LEEWAY_SECONDS - 1)}")
    assert response.status_code == 200 and response.content_type == "text/event-stream"
    (message,) = parse(response.body)
    assert (message.type, json.loads(message.data), message.last_event_id) == (EXPIRED, {"reason": "expired"}, "")
    assert b"retry: 30000\n" in response.body


def test_a_token_within_the_leeway_still_counts(private):
    app = private()
    token = mint(["user.42"], lifetime=-(LEEWAY_SECONDS - 2), nbf=time.time() + LEEWAY_SECONDS - 2)
    response = app.get(f"/events?channel=user.42&token={token}&ssehub_poll=1&lastEventId=0-0")
    assert EXPIRED.encode() not in response.body


@pytest.mark.parametrize("where", ["header", "cookie", "query"])
def test_the_token_is_read_from_the_header_the_cookie_or_the_query(live, where):
    hub = live(jwt_secret=SECRET)
    query, headers = sent(mint(["user.42"]), where)
    reader = hub.stream(f"channel=user.42{query}", headers)
    assert reader.status == 200
    hub.publish("user.42", "for you")
    assert reader.take(1)[0].data == "for you"


def test_the_first_of_header_cookie_and_query_counts(private):
    app = private()
    good, bad = mint(["user.42"]), mint(["user.42"], key="y" * 40)
    poll = "channel=user.42&ssehub_poll=1&lastEventId=0-0"
    assert refused(app, 401, f"{poll}&token={good}", headers={"Authorization": f"Bearer {bad}"})
    assert refused(app, 401, f"{poll}&token={good}", headers={"Cookie": f"ssehub_token={bad}"})
    assert app.get(f"/events?{poll}&token={bad}", headers={"Cookie": f"ssehub_token={good}"}).status_code == 200
    # An Authorization header of another scheme (a proxy's Basic) is not a token.
    assert app.get(f"/events?{poll}&token={good}", headers={"Authorization": "Basic dXNlcjpwdw=="}).status_code == 200


def test_public_channels_need_no_token_and_a_stale_one_does_not_break_them(private):
    app = private()
    stale = mint(["user.42"], key="z" * 40)
    for headers in ({}, {"Cookie": f"ssehub_token={stale}"}):
        response = app.get("/events?channel=news.sport&ssehub_poll=1&lastEventId=0-0", headers=headers)
        assert response.status_code == 200
    assert "'news'" in refused(app, 401, "channel=news")  # news.* covers news.sport, not news


def test_with_no_key_every_channel_is_public_as_before(make_app):
    app = webtest.TestApp(make_app(), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    response = app.get("/events?channel=user.42&ssehub_poll=1&lastEventId=0-0&token=garbage")
    assert response.status_code == 200


def test_refusals_are_readable_cross_origin(private):
    app = private(allowed_origins=(ORIGIN,))
    response = app.get("/events?channel=user.42", headers={"Origin": ORIGIN}, status=401)
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Vary"] == "Origin"
    preflight = app.options("/events", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("where", ["header", "cookie", "query"])
def test_an_oversized_token_is_a_clean_4xx_wherever_it_is_sent(live, where):
    hub = live(jwt_secret=SECRET)
    query, headers = sent(mint(["user.42"], padding="x" * 64 * 1024), where)
    status, body = hub.request_raw("GET", f"/events?channel=user.42{query}", headers=headers)
    expected = {"header": (400, "over 64 KB"), "cookie": (400, "over 64 KB"), "query": (414, "Authorization: Bearer")}
    assert status == expected[where][0]
    assert expected[where][1] in json.loads(body)["error"]


def test_a_token_over_8_kb_that_fits_in_a_header_is_a_401(live):
    hub = live(jwt_secret=SECRET)
    status, body = hub.request_raw(
        "GET", "/events?channel=user.42", headers={"Authorization": f"Bearer {mint(['*'], padding='x' * 9000)}"}
    )
    assert (status, "longer than 8192" in json.loads(body)["error"]) == (401, True)


_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_json_headers = st.dictionaries(
    st.sampled_from(["alg", "typ", "kid", "crit", "jku"]),
    st.one_of(st.sampled_from(["HS256", "RS256", "ES256", "none", "HS512"]), st.integers(), st.none(), st.text()),
)
# Garbage, near-JWTs (three base64url parts), and JWTs whose parts are JSON of any shape.
_tokens = st.one_of(
    st.text(max_size=200),
    st.lists(st.text(alphabet=_BASE64URL, max_size=60), min_size=1, max_size=5).map(".".join),
    st.tuples(_json_headers, st.recursive(st.none() | st.integers() | st.text(), st.lists, max_leaves=5)).map(
        lambda parts: (
            ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode() for part in parts)
            + ".sig"
        )
    ),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=_tokens, where=st.sampled_from(["header", "cookie", "query"]))
def test_any_token_sent_anywhere_is_a_clean_401_never_a_500(make_app, token, where):
    app = webtest.TestApp(make_app(jwt_secret=SECRET), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    query, headers = sent(token if where == "header" else urllib.parse.quote(token), where)
    response = app.get(f"/events?channel=user.42{query}", headers=headers, expect_errors=True)
    assert response.status_int in (400, 401), response.body[:300]
    assert response.json["error"]


@pytest.mark.parametrize("exp", [10**400, "NaN", "Infinity", True])
def test_an_exp_no_clock_can_hold_is_a_401(private, exp):
    # json.dumps writes NaN and Infinity as bare words, which PyJWT's decoder reads back.
    claims = {"sub": "x", "ssehub": {"subscribe": ["user.42"]}, "exp": float(exp) if isinstance(exp, str) else exp}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert "exp must be a number" in refused(private(), 401, f"channel=user.42&token={token}")


def test_a_page_of_a_listed_origin_may_send_its_cookies_but_not_with_a_star(make_app):
    for allowed, expected in (((ORIGIN,), "true"), (("*",), None)):
        app = webtest.TestApp(make_app(jwt_secret=SECRET, allowed_origins=allowed))
        headers = {"Origin": ORIGIN, "Cookie": f"ssehub_token={mint(['user.42'])}"}
        response = app.get("/events?channel=user.42&ssehub_poll=1&lastEventId=0-0", headers=headers)
        assert response.headers.get("Access-Control-Allow-Credentials") == expected
        preflight = app.options("/events", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
        assert preflight.headers.get("Access-Control-Allow-Credentials") == expected


def test_once_an_app_exists_no_logger_of_the_process_shows_a_token(make_app):
    """Whoever configured the logger: gunicorn's access log is not ours."""
    make_app(jwt_secret=SECRET)
    token = mint(["user.42"])
    written = io.StringIO()
    foreign = logging.getLogger("another.server.access")
    foreign.addHandler(logging.StreamHandler(written))
    foreign.propagate = False
    try:
        foreign.warning('"GET /events?channel=user.42&token=%s HTTP/1.1" 200', token)
        foreign.warning("header %s", token)
    finally:
        foreign.handlers.clear()
    assert token.split(".")[1] not in written.getvalue()
    assert written.getvalue().count("[redacted]") == 2
