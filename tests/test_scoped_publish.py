"""Who may write with a token (issue 11, items 6 and 7): scoped publishing and chat as the token's holder."""

import json

import pytest
import webtest

from ssehub import chat
from tests.tokens import SECRET, mint

FAR_AWAY = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def hub(make_app):
    app = make_app(jwt_secret=SECRET, publish_token="the-publish-token", allowed_origins=("https://site.example",))
    return app, webtest.TestApp(app, extra_environ=FAR_AWAY)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def history(app, channel: str) -> list[str]:
    return [event.data for event in app.broker.recent(channel, 100)]


def test_a_publish_token_publishes_to_the_channels_it_covers_from_anywhere(hub):
    app, client = hub
    token = mint(publish=["user.42", "team.*"])
    for channel in ("user.42", "team.7"):
        reply = client.post_json("/publish", {"channel": channel, "data": "hi"}, headers=bearer(token), status=201)
        assert reply.json["channel"] == channel
    error = client.post_json("/publish", {"channel": "user.43", "data": "x"}, headers=bearer(token), status=403)
    assert "'user.43'" in error.json["error"]
    assert history(app, "user.43") == []


def test_a_batch_with_one_channel_not_covered_publishes_nothing(hub):
    app, client = hub
    batch = [{"channel": channel, "data": "x"} for channel in ("user.42", "team.7", "user.42")]
    error = client.post_json("/publish", batch, headers=bearer(mint(publish=["user.42"])), status=403)
    assert "'team.7'" in error.json["error"] and "nothing was published" in error.json["error"]
    assert history(app, "user.42") == [] and history(app, "team.7") == []


def test_a_publish_jwt_works_without_a_publish_token_configured(make_app):
    client = webtest.TestApp(make_app(jwt_secret=SECRET), extra_environ=FAR_AWAY)
    client.post_json("/publish", {"channel": "user.42", "data": "x"}, headers=bearer(mint(publish=["*"])), status=201)
    # Without a credential, from another machine, still refused as before.
    client.post_json("/publish", {"channel": "user.42", "data": "x"}, status=403)


@pytest.mark.parametrize(
    "make_token, status, reason",
    [
        (lambda: mint(publish=["*"], lifetime=-60), 401, "expired"),
        (lambda: mint(publish=["*"], key="k" * 40), 401, "signature"),
        (lambda: mint(subscribe=["*"]), 403, "'user.42'"),
        (lambda: "not.a.jwt", 401, "not a JWT"),
        (lambda: "wrong-publish-token", 401, "PUBLISH_TOKEN"),
    ],
)
def test_a_publish_with_a_bad_or_insufficient_token_is_refused(hub, make_token, status, reason):
    app, client = hub
    headers = bearer(make_token())
    error = client.post_json("/publish", {"channel": "user.42", "data": "x"}, headers=headers, status=status)
    assert reason in error.json["error"]
    assert history(app, "user.42") == []


def test_the_publish_token_still_covers_every_channel(hub):
    _, client = hub
    client.post_json("/publish", {"channel": "any.thing", "data": "x"}, headers=bearer("the-publish-token"), status=201)


def widget_post(client, body: dict, status: int):
    return client.post(
        "/widget/messages",
        json.dumps(body),
        headers={"Origin": "https://site.example", "Content-Type": "text/plain"},
        status=status,
    )


@pytest.fixture
def chat_hub(make_app):
    app = make_app(
        jwt_secret=SECRET,
        secret_key="a-chat-cookie-signing-key",
        public_channels=("lobby",),
        chat_channels=("lobby", "team.7"),
        allowed_origins=("https://site.example",),
    )
    return app, webtest.TestApp(app, extra_environ=FAR_AWAY)


def test_chat_with_a_token_posts_as_its_name_verified_whatever_the_post_says(chat_hub):
    app, client = chat_hub
    token = mint(["team.7"], ssehub={"subscribe": ["team.7"], "name": "Ada"})
    widget_post(client, {"channel": "team.7", "text": "hello", "author": "Mallory", "token": token}, 201)
    (message,) = [json.loads(data) for data in history(app, "team.7")]
    assert (message["author"], message["verified"], message["text"]) == ("Ada", True, "hello")
    # Without a name, the token's sub.
    widget_post(client, {"channel": "team.7", "text": "again", "token": mint(["team.7"])}, 201)
    assert json.loads(history(app, "team.7")[-1])["author"] == "user-42"


@pytest.mark.parametrize(
    "make_body, status, reason",
    [
        (lambda: {"channel": "team.7", "author": "Ada", "text": "hi"}, 401, "needs a token"),
        (lambda: {"channel": "team.7", "text": "hi", "token": mint(["team.8"])}, 403, "does not let you read"),
        (lambda: {"channel": "team.7", "text": "hi", "token": mint(["team.7"], lifetime=-60)}, 401, "expired"),
        (lambda: {"channel": "team.7", "text": "hi", "token": mint(["team.7"], key="q" * 40)}, 401, "signature"),
        (lambda: {"channel": "team.7", "text": "hi", "token": 42}, 401, "must be a string"),
        (lambda: {"channel": "team.8", "text": "hi", "token": mint(["*"])}, 403, "chat is not open"),
        (
            lambda: {"channel": "team.7", "text": "hi", "token": mint(["team.7"], sub=None)},
            403,
            "no ssehub.name or sub",
        ),
    ],
)
def test_chat_on_a_private_channel_needs_a_token_that_can_read_it(chat_hub, make_body, status, reason):
    app, client = chat_hub
    assert reason in widget_post(client, make_body(), status).json["error"]
    assert history(app, "team.7") == []


def test_anonymous_widget_chat_stays_as_before_on_public_chat_channels(chat_hub):
    app, client = chat_hub
    widget_post(client, {"channel": "lobby", "author": "Guest", "text": "hi"}, 201)
    assert json.loads(history(app, "lobby")[0])["verified"] is False


def test_the_demo_page_posts_as_the_token_in_its_cookie(chat_hub):
    app, client = chat_hub
    client.set_cookie("ssehub_token", mint(["team.7"], ssehub={"subscribe": ["team.7"], "name": "Grace"}))
    same_origin = {"Origin": "http://localhost"}
    client.post_json("/chat/messages", {"channel": "team.7", "text": "from the demo"}, headers=same_origin, status=201)
    assert json.loads(history(app, "team.7")[0])["author"] == "Grace"


def test_on_a_public_chat_channel_a_token_that_will_not_do_is_no_token(chat_hub):
    app, client = chat_hub
    for stale in (mint(["*"], lifetime=-60), mint(["*"], key="v" * 40), mint(["*"], sub=None)):
        widget_post(client, {"channel": "lobby", "author": "Guest", "text": "hi", "token": stale}, 201)
    assert [json.loads(data)["verified"] for data in history(app, "lobby")] == [False, False, False]


def test_a_hub_without_a_key_ignores_tokens_in_chat_as_before(make_app):
    client = webtest.TestApp(make_app(allowed_origins=("https://site.example",)), extra_environ=FAR_AWAY)
    widget_post(client, {"channel": "chat", "author": "Guest", "text": "hi", "token": mint(["*"])}, 201)


def test_a_long_sub_is_shortened_to_a_name(chat_hub):
    app, client = chat_hub
    subject = "0b5c2a6e-8f7d-4c1e-9a3b-2d4e6f8a0c1e"  # a UUID: 36 characters
    widget_post(client, {"channel": "team.7", "text": "hi", "token": mint(["team.7"], sub=subject)}, 201)
    assert json.loads(history(app, "team.7")[0])["author"] == subject[:29] + "..."


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 403),  # no sign of where it came from: refused
        ({"Origin": "https://evil.example"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-origin"}, 201),
        ({"Origin": "http://localhost"}, 201),
    ],
)
def test_a_demo_post_with_the_token_cookie_must_come_from_the_hubs_own_page(chat_hub, headers, status):
    app, client = chat_hub
    client.set_cookie("ssehub_token", mint(["team.7"], ssehub={"subscribe": ["team.7"], "name": "Grace"}))
    client.post_json("/chat/messages", {"channel": "team.7", "text": "x"}, headers=headers, status=status)


def test_a_token_that_is_not_ascii_is_a_401_not_a_500(chat_hub):
    _, client = chat_hub
    body = '{"channel": "team.7", "text": "hi", "token": "eyJ\\ud800.a.b"}'
    reply = client.post(
        "/widget/messages", body, headers={"Origin": "https://site.example", "Content-Type": "text/plain"}, status=401
    )
    assert "not a JWT" in reply.json["error"]


def test_a_long_name_is_shortened_after_normalising_it(chat_hub):
    app, client = chat_hub
    for name in ("A" * 40, "\ufdfa" * 3):  # U+FDFA becomes 18 characters under NFKC
        token = mint(["team.7"], ssehub={"subscribe": ["team.7"], "name": name})
        widget_post(client, {"channel": "team.7", "text": "hi", "token": token}, 201)
    authors = [json.loads(data)["author"] for data in history(app, "team.7")]
    assert authors[0] == "A" * 29 + "..." and len(authors[1]) == 32 and authors[1].endswith("...")


def test_a_stale_token_cookie_without_origin_posts_as_without_it_on_a_public_channel(chat_hub):
    app, client = chat_hub
    client.set_cookie("ssehub_token", mint(["*"], lifetime=-60))
    client.set_cookie(chat.COOKIE, chat.signed_name("Linus", app.config.secret_key.encode()))
    client.post_json("/chat/messages", {"channel": "lobby", "text": "hi"}, status=201)
    assert json.loads(history(app, "lobby")[0])["author"] == "Linus"
