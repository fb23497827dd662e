"""The websocket side on a real server, driven by a raw protocol-7 client."""

from __future__ import annotations

import json
import logging
import time

import pytest
import requests
import websocket

from panel_pusher import signatures

from .helpers import WSClient, presence_data, sdk, wait_for


def test_handshake_data(server, connect):
    client = WSClient(server)
    frame = client.receive()
    client.close()

    assert frame["event"] == "pusher:connection_established"
    data = json.loads(frame["data"])
    assert data["activity_timeout"] == 120
    assert data["socket_id"].count(".") == 1
    assert data["socket_id"].replace(".", "").isdigit()


def test_unknown_key_error_then_close(server):
    client = WSClient(server, key="wrong-key")
    error = client.receive()
    close = client.receive()
    client.close()

    assert error == {"event": "pusher:error", "data": {"code": 4001, "message": "app key 'wrong-key' not found"}}
    assert close == {"event": "<close>", "code": 4001}


@pytest.mark.parametrize("query", ["protocol=8", "protocol=abc", "protocol=4"])
def test_unsupported_protocol_closes_4007(server, query):
    client = WSClient(server, query=query)
    error = client.receive()
    close = client.receive()
    client.close()

    assert error["data"]["code"] == 4007
    assert close["code"] == 4007


@pytest.mark.parametrize("query", ["protocol=6&client=Pysher&version=1.0.7", "", "protocol=5"])
def test_old_protocols_accepted(server, query):
    client = WSClient.connect(server, query=query)
    client.close()


@pytest.mark.parametrize("data", [{}, "", None])
def test_ping_answered_with_pong(connect, data):
    client = connect()
    client.send("pusher:ping", data)
    assert client.receive() == {"event": "pusher:pong", "data": {}}


def test_public_subscribe_and_trigger(server, connect):
    client = connect()
    reply = client.subscribe("news")
    sdk(server).trigger("news", "update", {"n": 1})

    assert reply == {"event": "pusher_internal:subscription_succeeded", "channel": "news", "data": "{}"}
    assert client.receive() == {"event": "update", "channel": "news", "data": '{"n": 1}'}


def test_subscribe_data_as_string(server, connect):
    client = connect()
    client.send("pusher:subscribe", json.dumps({"channel": "news"}))
    assert client.receive()["event"] == "pusher_internal:subscription_succeeded"


def test_private_subscribe_signed(connect):
    client = connect()
    assert client.subscribe("private-room")["event"] == "pusher_internal:subscription_succeeded"


def test_private_signature_for_other_socket_rejected(server, connect):
    client = connect()
    auth = signatures.channel_auth(server.key, server.secret, "1.1", "private-room")
    error = client.subscribe("private-room", auth=auth)
    scoped = client.receive()

    assert error["event"] == "pusher:error"
    assert error["data"]["code"] is None
    assert "invalid signature" in error["data"]["message"]
    assert scoped["event"] == "pusher:subscription_error"
    assert scoped["channel"] == "private-room"
    assert scoped["data"]["status"] == 401

    # The socket stays usable after the rejection.
    assert client.subscribe("private-room")["event"] == "pusher_internal:subscription_succeeded"


@pytest.mark.parametrize(
    "channel", ["private-room", "private-encrypted-room", "private-cache-room", "presence-room"]
)
def test_private_without_auth_rejected_harmlessly(connect, channel):
    # pysher with auto_sub resubscribes private channels with no auth.
    client = connect()
    error = client.subscribe(channel, sign=False)
    assert error["event"] == "pusher:error"
    assert error["data"]["code"] is None


def test_forged_signature_rejected(server, connect):
    client = connect()
    auth = signatures.channel_auth(server.key, "not-the-secret", client.socket_id, "private-room")
    assert client.subscribe("private-room", auth=auth)["event"] == "pusher:error"


def test_presence_without_user_data_rejected(server, connect):
    client = connect()
    auth = signatures.channel_auth(server.key, server.secret, client.socket_id, "presence-room")
    error = client.subscribe("presence-room", auth=auth)
    assert error["event"] == "pusher:error"
    assert error["data"]["code"] is None
    assert "channel_data" in error["data"]["message"]


@pytest.mark.parametrize("channel", ["", "a" * 201, "bad name", "bad#name", None, 5])
def test_bad_channel_name_rejected(connect, channel):
    client = connect()
    client.send("pusher:subscribe", {"channel": channel})
    error = client.receive()
    assert error["event"] == "pusher:error"
    assert error["data"]["code"] is None


def test_channel_name_of_200_accepted(connect):
    client = connect()
    assert client.subscribe("a" * 200)["event"] == "pusher_internal:subscription_succeeded"


def test_presence_members_counted_per_user(server, connect):
    first = connect()
    second = connect()
    third = connect()

    first_reply = first.subscribe("presence-room", channel_data=presence_data("u1", name="Ann"))
    second_reply = second.subscribe("presence-room", channel_data=presence_data("u2"))
    added = first.receive()
    # A second socket of u1 adds no member.
    third_reply = third.subscribe("presence-room", channel_data=presence_data("u1", name="Ann"))

    assert json.loads(first_reply["data"]) == {
        "presence": {"ids": ["u1"], "hash": {"u1": {"name": "Ann"}}, "count": 1}
    }
    assert json.loads(second_reply["data"])["presence"]["count"] == 2
    assert added["event"] == "pusher_internal:member_added"
    assert json.loads(added["data"]) == {"user_id": "u2", "user_info": None}
    assert json.loads(third_reply["data"])["presence"]["count"] == 2
    first.expect_silence()
    second.expect_silence()

    assert sdk(server).users_info("presence-room") == {"users": [{"id": "u1"}, {"id": "u2"}]}

    # u1 leaves only when its last socket goes.
    first.send("pusher:unsubscribe", {"channel": "presence-room"})
    second.expect_silence()
    third.close()
    removed = second.receive()
    assert removed["event"] == "pusher_internal:member_removed"
    assert json.loads(removed["data"]) == {"user_id": "u1"}


def test_presence_numeric_user_id(connect):
    client = connect()
    reply = client.subscribe("presence-room", channel_data=presence_data(10))
    assert json.loads(reply["data"])["presence"]["ids"] == ["10"]


def test_presence_member_limit(make_server):
    server = make_server(max_presence_members=2)
    clients = [WSClient.connect(server) for _ in range(3)]
    try:
        for index, client in enumerate(clients[:2]):
            client.subscribe("presence-room", channel_data=presence_data(f"u{index}"))
        error = clients[2].subscribe("presence-room", channel_data=presence_data("u9"))
    finally:
        for client in clients:
            client.close()

    assert error["event"] == "pusher:error"
    assert "full" in error["data"]["message"]


def test_resubscribe_is_idempotent(server, connect):
    client = connect()
    other = connect()
    client.subscribe("presence-room", channel_data=presence_data("u1"))
    other.subscribe("presence-room", channel_data=presence_data("u2"))
    client.receive_until("pusher_internal:member_added")

    again = client.subscribe("presence-room", channel_data=presence_data("u1"))
    sdk(server).trigger("presence-room", "ev", "once")

    assert json.loads(again["data"])["presence"]["count"] == 2
    assert client.receive()["data"] == "once"
    client.expect_silence()
    other.receive_until("ev")
    other.expect_silence()


def test_unsubscribe_stops_delivery(server, connect):
    client = connect()
    client.subscribe("news")
    client.send("pusher:unsubscribe", {"channel": "news"})
    client.send("pusher:ping")
    assert client.receive()["event"] == "pusher:pong"

    sdk(server).trigger("news", "update", "x")
    client.expect_silence()


def test_unsubscribe_unknown_channel_is_quiet(connect):
    client = connect()
    client.send("pusher:unsubscribe", {"channel": "never-joined"})
    client.expect_silence()


def test_client_event_relayed_not_echoed(connect):
    sender = connect()
    receiver = connect()
    sender.subscribe("private-chat")
    receiver.subscribe("private-chat")

    sender.send("client-typing", {"who": "ann"}, channel="private-chat")

    assert receiver.receive() == {"event": "client-typing", "channel": "private-chat", "data": {"who": "ann"}}
    sender.expect_silence()


def test_client_event_on_presence_carries_user_id(connect):
    sender = connect()
    receiver = connect()
    sender.subscribe("presence-chat", channel_data=presence_data("ann"))
    receiver.subscribe("presence-chat", channel_data=presence_data("bob"))
    sender.receive_until("pusher_internal:member_added")

    sender.send("client-typing", "raw text", channel="presence-chat")
    frame = receiver.receive()

    assert frame == {"event": "client-typing", "channel": "presence-chat", "data": "raw text", "user_id": "ann"}


@pytest.mark.parametrize("channel", ["public-chat", "private-encrypted-chat"])
def test_client_event_rejected_on_channel_type(connect, channel):
    sender = connect()
    receiver = connect()
    for client in (sender, receiver):
        client.subscribe(channel)

    sender.send("client-typing", {}, channel=channel)
    error = sender.receive()

    assert error["event"] == "pusher:error"
    assert error["data"]["code"] is None
    receiver.expect_silence()


def test_client_event_from_non_member_rejected(connect):
    sender = connect()
    receiver = connect()
    receiver.subscribe("private-chat")

    sender.send("client-typing", {}, channel="private-chat")
    error = sender.receive()

    assert error["data"] == {"code": None, "message": "not subscribed to 'private-chat'"}
    receiver.expect_silence()


def test_client_events_disabled(make_server):
    server = make_server(enable_client_events=False)
    client = WSClient.connect(server)
    try:
        client.subscribe("private-chat")
        client.send("client-typing", {}, channel="private-chat")
        error = client.receive()
    finally:
        client.close()

    assert error["data"]["code"] is None
    assert "disabled" in error["data"]["message"]


def test_client_event_rate_limit(connect):
    sender = connect()
    sender.subscribe("private-chat")
    for index in range(11):
        sender.send("client-x", index, channel="private-chat")

    error = sender.receive()
    assert error["event"] == "pusher:error"
    assert error["data"]["code"] == 4301

    # 4301 keeps the socket open.
    sender.send("pusher:ping")
    assert sender.receive()["event"] == "pusher:pong"


def test_client_event_too_large(connect):
    sender = connect()
    receiver = connect()
    for client in (sender, receiver):
        client.subscribe("private-chat")

    sender.send("client-big", "x" * 10241, channel="private-chat")
    error = sender.receive()
    sender.send("client-ok", "x" * 10240, channel="private-chat")

    assert error["data"]["code"] is None
    assert "larger than 10240 bytes" in error["data"]["message"]
    assert receiver.receive()["event"] == "client-ok"


def test_signin_and_server_to_user(server, connect):
    client = connect()
    other = connect()
    reply = client.sign_in("u1")
    subscribed = client.subscribe("#server-to-user-u1")
    stolen = other.subscribe("#server-to-user-u1")
    sdk(server).send_to_user("u1", "hello", {"n": 1})

    assert reply["event"] == "pusher:signin_success"
    assert json.loads(reply["data"]) == {"user_data": '{"id": "u1"}'}
    assert subscribed["event"] == "pusher_internal:subscription_succeeded"
    assert stolen["event"] == "pusher:error"
    assert client.receive() == {"event": "hello", "channel": "#server-to-user-u1", "data": '{"n": 1}'}


def test_presence_as_signed_in_user(server, connect):
    client = connect()
    other = connect()
    other.subscribe("presence-room", channel_data=presence_data("bob"))
    user_data = json.dumps({"id": "ann", "user_info": {"name": "Ann"}})
    auth = signatures.user_auth(server.key, server.secret, client.socket_id, user_data)
    client.send("pusher:signin", {"auth": auth, "user_data": user_data})
    client.receive()

    reply = client.subscribe("presence-room")

    assert json.loads(reply["data"])["presence"]["hash"] == {"bob": None, "ann": {"name": "Ann"}}
    added = other.receive()
    assert json.loads(added["data"]) == {"user_id": "ann", "user_info": {"name": "Ann"}}


def test_signin_bad_signature_closes_4009(server, connect):
    client = connect()
    user_data = json.dumps({"id": "u1"})
    auth = signatures.user_auth(server.key, server.secret, "1.1", user_data)
    client.send("pusher:signin", {"auth": auth, "user_data": user_data})

    assert client.receive()["data"]["code"] == 4009
    assert client.receive() == {"event": "<close>", "code": 4009}


def test_terminate_user_connections(server, connect):
    client = connect()
    bystander = connect()
    client.sign_in("u1")

    sdk(server).terminate_user_connections("u1")

    assert client.receive()["data"]["code"] == 4009
    assert client.receive() == {"event": "<close>", "code": 4009}
    bystander.send("pusher:ping")
    assert bystander.receive()["event"] == "pusher:pong"


def test_cache_channel_miss_then_replay(server, connect):
    first = connect()
    first.subscribe("cache-prices")
    miss = first.receive()
    sdk(server).trigger("cache-prices", "price", "42")
    first.receive()

    late = connect()
    late.subscribe("cache-prices")
    replay = late.receive()

    assert miss == {"event": "pusher:cache_miss", "channel": "cache-prices"}
    assert replay == {"event": "price", "channel": "cache-prices", "data": "42"}


def test_cache_not_overwritten_by_client_event(server, connect):
    sender = connect()
    sender.subscribe("private-cache-room")
    sender.receive()
    sdk(server).trigger("private-cache-room", "state", "http")
    sender.receive()
    sender.send("client-state", "client", channel="private-cache-room")

    late = connect()
    late.subscribe("private-cache-room")
    assert late.receive()["data"] == "http"


def test_cache_expires(make_server):
    server = make_server(cache_ttl=0.05)
    sdk(server).trigger("cache-x", "ev", "old")
    time.sleep(0.1)
    client = WSClient.connect(server)
    try:
        client.subscribe("cache-x")
        assert client.receive()["event"] == "pusher:cache_miss"
    finally:
        client.close()


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"event": 5}',
        '{"event": "pusher:subscribe", "data": 5}',
        '{"event": "pusher:subscribe", "data": "not json"}',
        '{"event": "unknown-event"}',
        '{"event": "pusher:unknown"}',
        '{"event": "client-x", "channel": 5}',
        '{"event": "pusher:signin", "data": {"auth": 1}}',
        "\u00e9\u0000",
    ],
)
def test_bad_frames_get_error_and_keep_others(server, connect, raw):
    bad = connect()
    good = connect()
    good.subscribe("news")

    bad.send_raw(raw)
    error = bad.receive()
    sdk(server).trigger("news", "still", "up")

    assert error["event"] == "pusher:error"
    assert good.receive()["event"] == "still"


def test_binary_frame_rejected(connect):
    client = connect()
    client.send_raw(b"\x00\x01binary")
    error = client.receive()
    client.send("pusher:ping")

    assert error["data"] == {"code": None, "message": "binary frames are not supported"}
    assert client.receive()["event"] == "pusher:pong"


def test_oversized_frame_closes_only_that_socket(server, connect):
    bad = connect()
    good = connect()
    good.subscribe("news")

    bad.send_raw("x" * 40_000)
    assert bad.receive() == {"event": "<close>", "code": 1009}

    sdk(server).trigger("news", "still", "up")
    assert good.receive()["event"] == "still"


def test_errors_are_logged_with_socket_and_channel(server, connect, caplog):
    client = connect()
    with caplog.at_level(logging.WARNING, logger="panel_pusher.server"):
        client.subscribe("private-room", auth=f"{server.key}:{'0' * 64}")
        client.receive()

    messages = [record.getMessage() for record in caplog.records]
    assert any(client.socket_id in m and "private-room" in m for m in messages), messages
    assert not any("0" * 64 in m or server.secret in m for m in messages)


def test_idle_socket_pinged_then_closed_4201(make_server):
    server = make_server(activity_timeout=1, pong_timeout=0.5, activity_slack=0.0)
    client = WSClient.connect(server)
    try:
        ping = client.receive(timeout=5)
        error = client.receive(timeout=5)
        close = client.receive(timeout=5)
    finally:
        client.close()

    assert ping == {"event": "pusher:ping", "data": {}}
    assert error["data"]["code"] == 4201
    assert close == {"event": "<close>", "code": 4201}


def test_pong_keeps_idle_socket_open(make_server):
    server = make_server(activity_timeout=1, pong_timeout=0.5, activity_slack=0.0)
    client = WSClient.connect(server)
    try:
        for _ in range(2):
            assert client.receive(timeout=5)["event"] == "pusher:ping"
            client.send("pusher:pong", "")
    finally:
        client.close()


def test_sender_socket_excluded(server, connect):
    sender = connect()
    other = connect()
    for client in (sender, other):
        client.subscribe("news")
        client.subscribe("alerts")

    sdk(server).trigger(["news", "alerts"], "ev", "x", socket_id=sender.socket_id)

    assert {other.receive()["channel"], other.receive()["channel"]} == {"news", "alerts"}
    sender.expect_silence()


def test_subscription_succeeded_precedes_events(server, connect):
    # Triggers racing the subscribe frame may miss the socket, but none may precede the reply.
    client = connect()
    sdk_client = sdk(server)
    client.send("pusher:subscribe", {"channel": "news"})
    for index in range(5):
        sdk_client.trigger("news", "ev", str(index))

    frames = [client.receive()]
    while frames[-1].get("data") != "4":
        frames.append(client.receive())

    assert frames[0]["event"] == "pusher_internal:subscription_succeeded"
    data = [frame["data"] for frame in frames[1:]]
    assert data == sorted(data)


def test_websocket_ping_frame_answered(connect):
    client = connect()
    client.ws.ping(b"hi")
    client.ws.settimeout(5)
    opcode, payload = client.ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_PONG
    assert payload == b"hi"


def test_fan_out_reaches_every_subscriber_in_order(server):
    clients = [WSClient.connect(server) for _ in range(200)]
    try:
        for client in clients:
            client.send("pusher:subscribe", {"channel": "crowd"})
        for client in clients:
            assert client.receive()["event"] == "pusher_internal:subscription_succeeded"

        api = sdk(server)
        for index in range(5):
            api.trigger("crowd", "ev", str(index))

        for client in clients:
            assert [client.receive()["data"] for _ in range(5)] == ["0", "1", "2", "3", "4"]
    finally:
        for client in clients:
            client.close()


def test_client_that_stops_reading_is_dropped(server, monkeypatch, caplog):
    import socket

    from panel_pusher.server import connections

    monkeypatch.setattr(connections, "MAX_WRITE_BUFFER_BYTES", 1024 * 1024)
    slow = WSClient.connect(server)
    slow.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.subscribe("news")
    good = WSClient.connect(server)
    good.subscribe("news")

    api = sdk(server)
    batch = [{"channel": "news", "name": "big", "data": "x" * 10_000}] * 10
    received = 0
    try:
        with caplog.at_level(logging.WARNING, logger="panel_pusher.server"):
            # 8 MB in all: more than the kernel's socket buffers (4 MB here) plus the cap.
            # The good client reads each batch before the next one, so only the slow one lags.
            for _ in range(80):
                api.trigger_batch(batch)
                received += sum(good.receive()["event"] == "big" for _ in range(10))

        assert received == 800
        assert any("is not reading" in record.getMessage() for record in caplog.records)
        assert wait_for(lambda: requests.get(server.url + "/status", timeout=5).json()["connections"] == 1)
    finally:
        slow.close()
        good.close()


def test_random_frames_never_break_server(make_server, caplog):
    # Fixed-seed frames that mix valid and invalid events, channels and data. A failed
    # sign-in closes the socket by design, so sign-in has tests of its own.
    import random

    rng = random.Random(7)
    server = make_server(client_event_rate=10_000)
    events = ["pusher:subscribe", "pusher:unsubscribe", "pusher:ping", "client-x",
              "x", "pusher:foo", "", None, 5, ["a"]]
    values = ["a", "private-a", "presence-a", "private-encrypted-a", "cache-a", "#server-to-user-u",
              "bad chan", "a" * 300, None, "", 0, 1.5, True, [], {}, {"user_id": "u"},
              '{"user_id":"u"}', "{"]

    def data() -> object:
        fields = rng.sample(["channel", "auth", "channel_data", "user_data"], rng.randint(0, 4))
        body = {field: rng.choice(values) for field in fields}
        return rng.choice([body, json.dumps(body), rng.choice(values)])

    fuzzer = WSClient.connect(server)
    good = WSClient.connect(server)
    good.subscribe("a")
    with caplog.at_level(logging.ERROR, logger="panel_pusher.server"):
        for _ in range(300):
            frame = {"event": rng.choice(events), "channel": rng.choice(values), "data": data()}
            fuzzer.send_raw(json.dumps(frame))
        fuzzer.send("pusher:ping")
        fuzzer.receive_until("pusher:pong")

    sdk(server).trigger("a", "alive", "yes")
    try:
        assert good.receive_until("alive")["data"] == "yes"
        assert [record.getMessage() for record in caplog.records] == []
    finally:
        fuzzer.close()
        good.close()
