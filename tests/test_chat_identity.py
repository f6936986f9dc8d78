"""Who a chat message is from: names the hub signed are verified, names a post
brings along are not, and every name is normalised and free of invisible tricks
(issue 9, item 5)."""

import json

import itsdangerous
import pytest
import webtest

from ssehub import chat

KEY = "s" * 32
# WebTest serves as http://localhost: the hub's own origin.
HUB = "http://localhost"


@pytest.fixture
def client(make_app):
    # ALLOWED_ORIGINS unset: only the hub's own origin may use /widget/messages.
    return webtest.TestApp(make_app(secret_key=KEY), extra_environ={"REMOTE_ADDR": "192.0.2.10"})


def published(client):
    return [json.loads(event.data) for event in client.app.broker.recent("chat", 10)]


def join(client, name):
    return client.post_json("/chat/name", {"name": name})


def widget_post(client, author, text="hi", status=201):
    body = json.dumps({"channel": "chat", "author": author, "text": text})
    return client.post("/widget/messages", body, headers={"Origin": HUB}, content_type="text/plain", status=status)


def test_a_post_with_the_signed_name_is_verified_and_a_widget_post_is_not(client):
    join(client, "Alice")
    client.post_json("/chat/messages", {"text": "from Alice"}, status=201)
    widget_post(client, "Alice", "also from Alice?")
    signed, claimed = published(client)
    assert (signed["author"], signed["verified"]) == ("Alice", True)
    assert (claimed["author"], claimed["verified"]) == ("Alice", False)
    assert set(signed) == set(claimed) == {"author", "text", "time", "verified"}


def test_a_curl_post_from_the_hubs_own_origin_cannot_pass_for_a_signed_name(client):
    # What anyone can send without a browser: the hub's own Origin, no cookie.
    widget_post(client, "Alice")
    [event] = published(client)
    assert event["verified"] is False


@pytest.mark.parametrize(
    "raw, name",
    [
        ("  Ada   Lovelace ", "Ada Lovelace"),
        ("\uff21\uff44\uff41", "Ada"),  # fullwidth letters
        ("Ada\u00a0\u3000Lovelace", "Ada Lovelace"),  # no-break and ideographic spaces
        ("\ufb01ona", "fiona"),  # the "fi" ligature
        ("Zo\u0065\u0308", "Zo\u00eb"),  # composed
        ("\u5f20\u4f1f \U0001f600", "\u5f20\u4f1f \U0001f600"),
    ],
)
def test_names_are_normalised_the_same_on_both_endpoints(client, raw, name):
    assert join(client, raw).json == {"name": name}
    widget_post(client, raw)
    assert published(client)[0]["author"] == name


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("Ali\u200bce", "invisible or direction-changing characters (U+200B)"),  # zero-width space
        ("\u202eecilA", "invisible or direction-changing characters (U+202E)"),  # right-to-left override
        ("Ali\u2066ce", "invisible or direction-changing characters (U+2066)"),  # left-to-right isolate
        ("\ufeffAlice", "invisible or direction-changing characters (U+FEFF)"),  # byte order mark
        ("Ali\u00adce", "invisible or direction-changing characters (U+00AD)"),  # soft hyphen
        ("Ali\u3164ce", "invisible or direction-changing characters (U+3164)"),  # Hangul filler, draws nothing
        ("a\x07b", "a name cannot contain control characters"),
        ("Ada\x1fLovelace", "a name cannot contain control characters"),  # str.split() takes it for a space
        ("Ada\nLovelace", "a name cannot contain control characters"),
        ("\u200b", "invisible or direction-changing characters (U+200B)"),
        ("\u3000 ", "a name is 1-32 characters"),
        ("\u3392" * 11, "a name is 1-32 characters"),  # 11 characters, 33 after NFKC
    ],
)
def test_names_with_invisible_or_control_characters_are_refused_with_the_reason(client, raw, reason):
    for reply in (client.post_json("/chat/name", {"name": raw}, status=400), widget_post(client, raw, status=400)):
        assert reason in reply.json["error"]
    assert published(client) == []


@pytest.mark.parametrize("age, name", [(chat.COOKIE_MAX_AGE - 60, "Ada"), (chat.COOKIE_MAX_AGE + 1, None)])
def test_the_server_refuses_a_name_cookie_older_than_its_lifetime(client, monkeypatch, age, name):
    issued = itsdangerous.TimestampSigner.get_timestamp
    monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: issued(self) - age)
    client.set_cookie(chat.COOKIE, chat.signed_name("Ada", KEY.encode()))
    monkeypatch.undo()
    assert client.get("/chat/name").json == {"name": name}
    client.post_json("/chat/messages", {"text": "hi"}, status=201 if name else 401)


def test_signed_names_round_trip_and_an_altered_one_is_refused():
    token = chat.signed_name("Ada", b"k" * 32)
    assert chat.name_from_signed(token, b"k" * 32) == "Ada"
    assert chat.name_from_signed(token, b"x" * 32) is None
    alice = chat.signed_name("Alice", b"k" * 32)
    assert chat.name_from_signed(alice.split(".")[0] + token[token.index(".") :], b"k" * 32) is None


@pytest.mark.parametrize(
    "cookie",
    [
        b"QWRtaW4.forged",
        "\u00e9.\u00e9".encode(),  # not ASCII: the hand-written HMAC raised on it (a 500)
        b"",
    ],
)
def test_a_garbled_name_cookie_is_no_name(client, cookie):
    header = {"Cookie": (chat.COOKIE.encode() + b"=" + cookie).decode("latin-1")}
    assert client.get("/chat/name", headers=header).json == {"name": None}
    client.post_json("/chat/messages", {"text": "hi"}, headers=header, status=401)
