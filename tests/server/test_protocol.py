"""Unit tests of the protocol rules, without sockets."""

from __future__ import annotations

import json

import pytest

from panel_pusher import signatures
from panel_pusher.server import protocol
from panel_pusher.server.errors import InvalidMessage, SubscriptionError, Unauthorized
from panel_pusher.server.errors import UnsupportedProtocol

# Published test vectors of Pusher's auth-signature documentation.
KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"
SOCKET_ID = "1234.1234"


@pytest.mark.parametrize(
    ("name", "private", "presence", "encrypted", "cache", "user"),
    [
        ("public", False, False, False, False, False),
        ("cache-x", False, False, False, True, False),
        ("private-x", True, False, False, False, False),
        ("private-cache-x", True, False, False, True, False),
        ("private-encrypted-x", True, False, True, False, False),
        ("private-encrypted-cache-x", True, False, True, True, False),
        ("presence-x", True, True, False, False, False),
        ("presence-cache-x", True, True, False, True, False),
        ("#server-to-user-u1", False, False, False, False, True),
    ],
)
def test_channel_type_by_prefix(name, private, presence, encrypted, cache, user):
    kind = protocol.channel_type(name)
    assert kind.private == private
    assert kind.presence == presence
    assert kind.encrypted == encrypted
    assert kind.cache == cache
    assert kind.user == user


@pytest.mark.parametrize(("value", "expected"), [(None, 7), ("", 7), ("5", 5), ("6", 6), ("7", 7)])
def test_protocol_version_accepted(value, expected):
    assert protocol.check_protocol_version(value) == expected


@pytest.mark.parametrize("value", ["4", "8", "x", "7.0", "-7"])
def test_protocol_version_rejected(value):
    with pytest.raises(UnsupportedProtocol):
        protocol.check_protocol_version(value)


def test_socket_id_format():
    for _ in range(100):
        assert protocol.SOCKET_ID_PATTERN.match(protocol.new_socket_id())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "invalid JSON"),
        ("[]", "a frame must be a JSON object"),
        ('{"data": {}}', "missing or invalid 'event'"),
        ('{"event": 5}', "missing or invalid 'event'"),
        ('{"event": ""}', "missing or invalid 'event'"),
        ('{"event": "x", "channel": 5}', "'channel' must be a string"),
    ],
)
def test_parse_frame_rejects(text, message):
    with pytest.raises(InvalidMessage) as caught:
        protocol.parse_frame(text)
    assert caught.value.message == message
    assert caught.value.error_frame()["data"]["code"] is None


def test_event_data_string_or_object():
    assert protocol.decode_event_data({"channel": "a"}) == {"channel": "a"}
    assert protocol.decode_event_data('{"channel": "a"}') == {"channel": "a"}
    assert protocol.decode_event_data("") == {}
    assert protocol.decode_event_data(None) == {}


@pytest.mark.parametrize("data", ["not json", "[1]", 5, [1]])
def test_event_data_rejects(data):
    with pytest.raises(InvalidMessage):
        protocol.decode_event_data(data)


def test_private_vector_accepted():
    auth = f"{KEY}:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
    member = protocol.authorize_subscription(
        KEY, SECRET, SOCKET_ID, "private-foobar", {"auth": auth}, None
    )
    assert member is None


def test_presence_vector_accepted():
    channel_data = '{"user_id":10,"user_info":{"name":"Mr. Channels"}}'
    auth = f"{KEY}:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
    member = protocol.authorize_subscription(
        KEY, SECRET, SOCKET_ID, "presence-foobar", {"auth": auth, "channel_data": channel_data}, None
    )
    assert member == protocol.Member("10", {"name": "Mr. Channels"})


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "",
        f"{KEY}:" + "0" * 64,
        "otherkey:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4",
        "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4",
        5,
    ],
)
def test_private_bad_auth_rejected(auth):
    with pytest.raises(SubscriptionError) as caught:
        protocol.authorize_subscription(KEY, SECRET, SOCKET_ID, "private-foobar", {"auth": auth}, None)
    assert caught.value.channel == "private-foobar"
    assert caught.value.code is None


def test_private_signature_of_other_socket_rejected():
    auth = signatures.channel_auth(KEY, SECRET, "9999.9999", "private-foobar")
    with pytest.raises(SubscriptionError, match="invalid signature"):
        protocol.authorize_subscription(KEY, SECRET, SOCKET_ID, "private-foobar", {"auth": auth}, None)


def test_presence_without_channel_data_rejected():
    auth = signatures.channel_auth(KEY, SECRET, SOCKET_ID, "presence-x")
    with pytest.raises(SubscriptionError, match="channel_data"):
        protocol.authorize_subscription(KEY, SECRET, SOCKET_ID, "presence-x", {"auth": auth}, None)


def test_presence_channel_data_reserialised_rejected():
    # The signature covers the exact string; a re-encoded equal object must fail.
    signed = json.dumps({"user_id": "u1"})
    auth = signatures.channel_auth(KEY, SECRET, SOCKET_ID, "presence-x", signed)
    data = {"auth": auth, "channel_data": json.dumps({"user_id": "u1"}, separators=(",", ":"))}
    with pytest.raises(SubscriptionError, match="invalid signature"):
        protocol.authorize_subscription(KEY, SECRET, SOCKET_ID, "presence-x", data, None)


@pytest.mark.parametrize(
    "channel_data",
    ["not json", "[1]", "{}", '{"user_id": ""}', '{"user_id": true}', '{"user_id": null}',
     json.dumps({"user_id": "u" * 129}), json.dumps({"user_id": "u", "user_info": "x" * 1100})],
)
def test_presence_bad_channel_data_rejected(channel_data):
    with pytest.raises(SubscriptionError):
        protocol.parse_channel_data("presence-x", channel_data)


def test_user_channel_only_for_signed_in_user():
    u1 = protocol.Member("u1")
    assert protocol.authorize_subscription(KEY, SECRET, SOCKET_ID, "#server-to-user-u1", {}, u1) is None
    with pytest.raises(SubscriptionError):
        protocol.authorize_subscription(KEY, SECRET, SOCKET_ID, "#server-to-user-u1", {}, None)
    with pytest.raises(SubscriptionError):
        protocol.authorize_subscription(KEY, SECRET, SOCKET_ID, "#server-to-user-u1", {}, protocol.Member("u2"))


def test_presence_as_signed_in_user():
    user = protocol.Member("u1", {"name": "Ann"})
    auth = signatures.channel_auth(KEY, SECRET, SOCKET_ID, "presence-x")
    member = protocol.authorize_subscription(KEY, SECRET, SOCKET_ID, "presence-x", {"auth": auth}, user)
    assert member == user


def test_presence_as_signed_in_user_needs_signature():
    user = protocol.Member("u1")
    auth = signatures.channel_auth(KEY, SECRET, "1.1", "presence-x")
    with pytest.raises(SubscriptionError, match="invalid signature"):
        protocol.authorize_subscription(KEY, SECRET, SOCKET_ID, "presence-x", {"auth": auth}, user)


def test_signin_vector_accepted():
    user_data = '{"id":"12345"}'
    auth = f"{KEY}:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
    assert protocol.check_signin(KEY, SECRET, SOCKET_ID, {"auth": auth, "user_data": user_data}) == (
        protocol.Member("12345"),
        user_data,
    )


@pytest.mark.parametrize(
    "user_data", ['{"id": 5}', '{"id": ""}', "[]", "nope", '{"name": "x"}']
)
def test_signin_bad_user_data_rejected(user_data):
    auth = signatures.user_auth(KEY, SECRET, SOCKET_ID, user_data)
    with pytest.raises(Unauthorized):
        protocol.check_signin(KEY, SECRET, SOCKET_ID, {"auth": auth, "user_data": user_data})


def test_signin_bad_signature_rejected():
    user_data = '{"id":"12345"}'
    auth = signatures.user_auth(KEY, SECRET, "1.1", user_data)
    with pytest.raises(Unauthorized) as caught:
        protocol.check_signin(KEY, SECRET, SOCKET_ID, {"auth": auth, "user_data": user_data})
    assert caught.value.code == 4009
    assert caught.value.closes


@pytest.mark.parametrize(
    ("channel", "subscribed", "enabled", "message"),
    [
        ("private-x", True, False, "client events are disabled on this server"),
        (None, True, True, "client event 'client-x' needs a channel"),
        ("public", True, True, "client events are allowed on private and presence channels only"),
        ("private-encrypted-x", True, True, "client events are allowed on private and presence channels only"),
        ("private-x", False, True, "not subscribed to 'private-x'"),
    ],
)
def test_client_event_rejected(channel, subscribed, enabled, message):
    with pytest.raises(InvalidMessage) as caught:
        protocol.check_client_event("client-x", channel, subscribed, enabled)
    assert caught.value.message == message


def test_client_event_allowed():
    assert protocol.check_client_event("client-x", "presence-x", True, True) == "presence-x"


def test_client_event_size_limit():
    protocol.check_client_event_size("x" * 10240)
    with pytest.raises(InvalidMessage):
        protocol.check_client_event_size("x" * 10241)


def test_rate_limiter_allows_rate_per_second():
    limiter = protocol.RateLimiter(10)
    allowed = [limiter.allow(100.0) for _ in range(12)]
    assert allowed.count(True) == 10
    assert limiter.allow(100.15)
    assert not limiter.allow(100.15)


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536])
def test_websocket_frame_header(length):
    frame = protocol.websocket_text_frame(b"x" * length)
    assert frame[0] == 0x81
    if length < 126:
        assert frame[1] == length
    elif length <= 0xFFFF:
        assert frame[1] == 126
        assert int.from_bytes(frame[2:4], "big") == length
    else:
        assert frame[1] == 127
        assert int.from_bytes(frame[2:10], "big") == length
    assert frame.endswith(b"x" * length)


def test_handshake_data_is_string():
    frame = json.loads(protocol.connection_established("1.2", 120))
    assert json.loads(frame["data"]) == {"socket_id": "1.2", "activity_timeout": 120}


def test_presence_succeeded_lists_members():
    frame = json.loads(protocol.subscription_succeeded("presence-x", {"u1": {"n": 1}, "u2": None}))
    assert json.loads(frame["data"]) == {
        "presence": {"ids": ["u1", "u2"], "hash": {"u1": {"n": 1}, "u2": None}, "count": 2}
    }
