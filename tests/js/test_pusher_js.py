"""Conformance of the embedded server with the pusher-js 8 client under Node.

Each test runs real pusher-js clients (see ``pusher_js_client.js``) against
the embedded server on 127.0.0.1 and triggers through the ``pusher`` SDK.
Checks that something did not arrive use a barrier instead of a sleep: the
server keeps one ordered queue per socket, so once a later event reaches a
client, an earlier frame for that client would have arrived first.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from panel_pusher.signatures import user_auth
from pusher_js_app import APP_ID, APP_KEY, APP_SECRET, make_sdk, start_test_server

pytestmark = pytest.mark.node

SOCKET_ID_PATTERN = re.compile(r"\A\d+\.\d+\Z")


def test_connect_gets_socket_id(server, pusher_js):
    client = pusher_js(server.port)

    socket_id = client.connect()

    assert SOCKET_ID_PATTERN.match(socket_id), socket_id
    ready = client.find("ready")[0]
    assert ready["version"].startswith("8."), ready


def test_unknown_key_refused(server, pusher_js):
    client = pusher_js(server.port, key="no-such-key")

    error = client.wait_type("connection_error")
    client.wait_type("state", current="disconnected")

    assert error["data"]["code"] == 4001, error
    assert client.find("connected") == []


def test_public_channel_receives_trigger(server, sdk, pusher_js):
    client = pusher_js(server.port)
    client.connect()
    client.subscribe("news")

    sdk.trigger("news", "headline", {"title": "h\u00e9llo", "n": 1})
    event = client.wait_type("event", event="headline")

    assert event["channel"] == "news"
    assert event["data"] == {"title": "h\u00e9llo", "n": 1}


def test_plain_text_data_passed_through(server, sdk, pusher_js):
    client = pusher_js(server.port)
    client.connect()
    client.subscribe("news")

    sdk.trigger("news", "note", "plain text, not JSON")
    event = client.wait_type("event", event="note")

    assert event["data"] == "plain text, not JSON"


def test_max_data_size_delivered(server, sdk, pusher_js):
    client = pusher_js(server.port)
    client.connect()
    client.subscribe("bulk")
    data = "x" * 10240

    sdk.trigger("bulk", "big", data)
    event = client.wait_type("event", event="big")

    assert event["data"] == data


def test_trigger_excludes_socket_id(server, sdk, pusher_js):
    sender = pusher_js(server.port, name="sender")
    other = pusher_js(server.port, name="other")
    sender_socket_id = sender.connect()
    other.connect()
    sender.subscribe("room")
    other.subscribe("room")

    sdk.trigger("room", "excluded", {"n": 1}, socket_id=sender_socket_id)
    sdk.trigger("room", "barrier", {"n": 2})

    other.wait_type("event", event="excluded")
    sender.wait_type("event", event="barrier")
    assert sender.find("event", event="excluded") == []


def test_unsubscribe_stops_events(server, sdk, pusher_js):
    client = pusher_js(server.port)
    client.connect()
    client.subscribe("left")
    client.subscribe("stays")

    client.send({"op": "unsubscribe", "channel": "left"})
    # The server handles one socket's frames in order, so once this
    # subscription succeeds it has processed the unsubscribe.
    client.subscribe("sync")
    sdk.trigger("left", "after-unsubscribe", {})
    sdk.trigger("stays", "barrier", {})

    client.wait_type("event", event="barrier")
    assert client.find("message", event="after-unsubscribe") == []


def test_private_channel_with_sdk_signature(server, sdk, pusher_js):
    client = pusher_js(server.port)
    socket_id = client.connect()

    client.subscribe("private-orders")
    sdk.trigger("private-orders", "created", {"id": 7})
    event = client.wait_type("event", event="created")

    assert event["data"] == {"id": 7}
    request = client.find("auth_request", channel="private-orders")[0]
    assert request["socket_id"] == socket_id


def test_private_tampered_signature_rejected(server, sdk, pusher_js):
    client = pusher_js(server.port, tamper=True)
    client.connect()

    client.send({"op": "subscribe", "channel": "private-secret"})
    error = client.wait_type("subscription_error", channel="private-secret")
    client.subscribe("public-after-error")
    sdk.trigger("private-secret", "leak", {})
    sdk.trigger("public-after-error", "barrier", {})

    client.wait_type("event", event="barrier")
    assert client.find("subscribed", channel="private-secret") == []
    assert client.find("message", event="leak") == []
    assert client.find("state", current="disconnected") == [], error


def test_presence_members_join_and_leave(server, sdk, pusher_js):
    alice = pusher_js(server.port, name="alice", user_id="alice", user_info={"name": "Alice"})
    bob = pusher_js(server.port, name="bob", user_id="bob", user_info={"name": "Bob"})
    alice.connect()
    bob.connect()

    first = alice.subscribe("presence-room")
    second = bob.subscribe("presence-room")
    added = alice.wait_type("member_added", channel="presence-room")

    assert first["members"] == {"count": 1, "ids": ["alice"], "me": {"id": "alice", "info": {"name": "Alice"}}}
    assert second["members"]["count"] == 2
    assert second["members"]["ids"] == ["alice", "bob"]
    assert added["member"] == {"id": "bob", "info": {"name": "Bob"}}
    assert bob.find("member_added") == []

    bob.send({"op": "unsubscribe", "channel": "presence-room"})
    removed = alice.wait_type("member_removed", channel="presence-room")

    assert removed["member"]["id"] == "bob"


def test_presence_user_on_two_sockets(server, sdk, pusher_js):
    first = pusher_js(server.port, name="first", user_id="carol")
    second = pusher_js(server.port, name="second", user_id="carol")
    first.connect()
    second.connect()
    first.subscribe("presence-desk")

    joined = second.subscribe("presence-desk")
    sdk.trigger("presence-desk", "barrier-1", {})
    first.wait_type("event", event="barrier-1")
    second.send({"op": "unsubscribe", "channel": "presence-desk"})
    # Once this subscription succeeds the server has handled the unsubscribe,
    # so a member_removed would reach the first socket before barrier-2.
    second.subscribe("sync")
    sdk.trigger("presence-desk", "barrier-2", {})
    first.wait_type("event", event="barrier-2")

    assert joined["members"]["count"] == 1
    assert joined["members"]["ids"] == ["carol"]
    assert first.find("member_added") == []
    assert first.find("member_removed") == []


def test_client_event_between_two_clients(server, sdk, pusher_js):
    sender = pusher_js(server.port, name="sender")
    receiver = pusher_js(server.port, name="receiver")
    sender.connect()
    receiver.connect()
    sender.subscribe("private-chat")
    receiver.subscribe("private-chat")

    sender.send({"op": "trigger", "channel": "private-chat", "event": "client-typing", "data": {"who": "sender"}})
    triggered = sender.wait_type("triggered", event="client-typing")
    event = receiver.wait_type("event", event="client-typing")
    sdk.trigger("private-chat", "barrier", {})
    sender.wait_type("event", event="barrier")

    assert triggered["sent"] == 1
    assert event["data"] == {"who": "sender"}
    assert event["channel"] == "private-chat"
    assert sender.find("message", event="client-typing") == []


def test_client_event_on_presence_has_user_id(server, pusher_js):
    sender = pusher_js(server.port, name="sender", user_id="dave")
    receiver = pusher_js(server.port, name="receiver", user_id="erin")
    sender.connect()
    receiver.connect()
    sender.subscribe("presence-chat")
    receiver.subscribe("presence-chat")

    sender.send({"op": "trigger", "channel": "presence-chat", "event": "client-wave", "data": {"n": 1}})
    message = receiver.wait_type("message", event="client-wave")

    assert message["user_id"] == "dave"
    assert message["data"] == {"n": 1}


def test_client_event_on_public_channel_rejected(server, sdk, pusher_js):
    sender = pusher_js(server.port, name="sender")
    receiver = pusher_js(server.port, name="receiver")
    sender.connect()
    receiver.connect()
    sender.subscribe("lobby")
    receiver.subscribe("lobby")

    # pusher-js sends client events on public channels without a local check.
    sender.send({"op": "trigger", "channel": "lobby", "event": "client-shout", "data": {}})
    error = sender.wait_type("connection_error")
    sdk.trigger("lobby", "barrier", {})
    receiver.wait_type("event", event="barrier")
    sender.wait_type("event", event="barrier")

    assert error["data"]["code"] is None, error
    assert receiver.find("message", event="client-shout") == []
    assert sender.find("state", current="disconnected") == []


def test_client_event_from_non_member_rejected(server, sdk, pusher_js):
    outsider = pusher_js(server.port, name="outsider", tamper=True)
    member = pusher_js(server.port, name="member")
    outsider.connect()
    member.connect()
    member.subscribe("private-members")
    outsider.send({"op": "subscribe", "channel": "private-members"})
    outsider.wait_type("subscription_error", channel="private-members")

    # pusher-js still sends a client event on a channel whose subscription failed.
    outsider.send({"op": "trigger", "channel": "private-members", "event": "client-intrude", "data": {}})
    error = outsider.wait_type("connection_error")
    sdk.trigger("private-members", "barrier", {})
    member.wait_type("event", event="barrier")

    assert error["data"]["code"] is None, error
    assert member.find("message", event="client-intrude") == []


def test_client_event_too_large_rejected(server, sdk, pusher_js):
    sender = pusher_js(server.port, name="sender")
    receiver = pusher_js(server.port, name="receiver")
    sender.connect()
    receiver.connect()
    sender.subscribe("private-files")
    receiver.subscribe("private-files")

    sender.send({"op": "trigger", "channel": "private-files", "event": "client-blob", "data": "x" * 12000})
    error = sender.wait_type("connection_error")
    sender.send({"op": "trigger", "channel": "private-files", "event": "client-small", "data": "x" * 100})
    receiver.wait_type("event", event="client-small")

    assert error["data"]["code"] is None, error
    assert receiver.find("message", event="client-blob") == []
    assert sender.find("state", current="disconnected") == []


def test_client_event_burst_rate_limited(server, sdk, pusher_js):
    sender = pusher_js(server.port, name="sender")
    receiver = pusher_js(server.port, name="receiver")
    sender.connect()
    receiver.connect()
    sender.subscribe("private-burst")
    receiver.subscribe("private-burst")

    sender.send({"op": "trigger", "channel": "private-burst", "event": "client-spam", "data": {}, "repeat": 30})
    error = sender.wait_type("connection_error")
    sdk.trigger("private-burst", "barrier", {})
    receiver.wait_type("event", event="barrier")
    sender.wait_type("event", event="barrier")

    assert error["data"]["code"] == 4301, error
    assert 1 <= len(receiver.find("message", event="client-spam")) < 30
    assert sender.find("state", current="disconnected") == []


def test_presence_without_user_data_rejected(server, sdk, pusher_js):
    sign = make_sdk(server.port)

    def authorize_without_channel_data(request):
        # A valid private-style signature but no channel_data for the member.
        return {"auth": sign.authenticate(request["channel"], request["socket_id"])["auth"]}

    client = pusher_js(server.port, authorizer=authorize_without_channel_data)
    client.connect()

    client.send({"op": "subscribe", "channel": "presence-nobody"})
    client.wait_type("subscription_error", channel="presence-nobody")

    assert client.find("subscribed", channel="presence-nobody") == []
    assert sdk.users_info("presence-nobody")["users"] == []


def test_presence_member_from_signin(server, pusher_js):
    sign = make_sdk(server.port)

    def authorize(request):
        if request["kind"] == "user":
            return sign.authenticate_user(request["socket_id"], {"id": "gina", "user_info": {"name": "Gina"}})
        # No channel_data: pusher-js 8 then takes the member from the signed-in user.
        return {"auth": sign.authenticate(request["channel"], request["socket_id"])["auth"]}

    client = pusher_js(server.port, authorizer=authorize)
    client.connect()
    client.send({"op": "signin"})
    client.wait_type("signed_in")

    subscribed = client.subscribe("presence-signed")

    assert subscribed["members"]["count"] == 1
    assert subscribed["members"]["ids"] == ["gina"]
    assert subscribed["members"]["me"] == {"id": "gina", "info": {"name": "Gina"}}


def test_ping_pong_keeps_connection(pusher_js):
    quick = start_test_server(activity_timeout=1)
    try:
        client = pusher_js(quick.port)
        client.connect()
        client.subscribe("heartbeat")
        mark = client.mark()

        # pusher-js pings after min(120 s, the server's activity_timeout) of silence.
        client.wait_type("message", event="pusher:pong", since=mark)
        second = client.mark()
        client.wait_type("message", event="pusher:pong", since=second)
        make_sdk(quick.port).trigger("heartbeat", "still-there", {})
        client.wait_type("event", event="still-there")
    finally:
        quick.stop()

    assert [record["current"] for record in client.find("state")] == ["connected"]


def test_signin_and_send_to_user(server, sdk, pusher_js):
    client = pusher_js(server.port, user_id="frank", user_info={"name": "Frank"})
    socket_id = client.connect()

    client.send({"op": "signin"})
    signed_in = client.wait_type("signed_in")
    # pusher-js subscribes to the user's own channel after signin_success.
    client.wait_type("message", event="pusher_internal:subscription_succeeded", channel="#server-to-user-frank")
    sdk.send_to_user("frank", "direct", {"text": "only for frank"})
    event = client.wait_type("user_event", event="direct")

    assert signed_in["user_data"] == {"id": "frank", "user_info": {"name": "Frank"}}
    assert event["data"] == {"text": "only for frank"}
    request = client.find("auth_request", kind="user")[0]
    assert request["socket_id"] == socket_id


def test_terminate_user_connections_disconnects(server, sdk, pusher_js):
    target = pusher_js(server.port, name="target", user_id="henry")
    bystander = pusher_js(server.port, name="bystander", user_id="ivy")
    target.connect()
    bystander.connect()
    target.send({"op": "signin"})
    bystander.send({"op": "signin"})
    target.wait_type("signed_in")
    bystander.wait_type("signed_in")
    bystander.subscribe("news")

    sdk.terminate_user_connections("henry")
    error = target.wait_type("connection_error")
    target.wait_type("state", current="disconnected")
    sdk.trigger("news", "barrier", {})
    bystander.wait_type("event", event="barrier")

    assert error["data"]["code"] == 4009, error
    assert bystander.find("state", current="disconnected") == []


def test_signin_tampered_signature_closes(server, pusher_js):
    client = pusher_js(server.port, user_id="mallory", tamper=True)
    client.connect()

    client.send({"op": "signin"})
    error = client.wait_type("connection_error")
    client.wait_type("state", current="disconnected")

    assert error["data"]["code"] == 4009, error
    assert client.find("signed_in") == []


def test_signin_numeric_user_id_rejected(server, pusher_js):
    def authorize_numeric_id(request):
        # A valid signature over user data whose id is a number, not a string.
        user_data = '{"id":5}'
        return {"auth": user_auth(APP_KEY, APP_SECRET, request["socket_id"], user_data), "user_data": user_data}

    client = pusher_js(server.port, authorizer=authorize_numeric_id)
    client.connect()

    client.send({"op": "signin"})
    error = client.wait_type("connection_error")
    client.wait_type("state", current="disconnected")

    assert error["data"]["code"] == 4009, error
    assert client.find("signed_in") == []


def test_encrypted_channel_decrypts(server, sdk, pusher_js):
    client = pusher_js(server.port)
    client.connect()
    client.subscribe("private-encrypted-vault")

    sdk.trigger("private-encrypted-vault", "sealed", {"msg": "h\u00e9llo"})
    event = client.wait_type("event", event="sealed")
    raw = client.wait_type("message", event="sealed")

    assert event["data"] == {"msg": "h\u00e9llo"}
    assert "ciphertext" in raw["data"], raw


def test_cache_channel_replays_last_event(server, sdk, pusher_js):
    client = pusher_js(server.port)
    client.connect()
    sdk.trigger("cache-prices", "tick", {"price": 1})
    sdk.trigger("cache-prices", "tick", {"price": 2})

    client.subscribe("cache-prices")
    replayed = client.wait_type("event", event="tick")
    client.subscribe("cache-empty")
    miss = client.wait_type("message", event="pusher:cache_miss")

    assert replayed["data"] == {"price": 2}
    assert miss["channel"] == "cache-empty"


def test_reconnect_after_server_restart(pusher_js):
    first_server = start_test_server()
    port = first_server.port
    first_stopped = False
    second_server = None
    try:
        client = pusher_js(port, user_id="kim", user_info={"name": "Kim"})
        first_socket_id = client.connect()
        client.send({"op": "signin"})
        client.wait_type("signed_in")
        client.subscribe("news")
        client.subscribe("private-orders")
        client.subscribe("presence-lobby")

        mark = client.mark()
        first_server.stop()
        first_stopped = True
        client.wait_for(
            lambda record: record.get("type") == "state" and record.get("previous") == "connected",
            since=mark,
            description="state change away from connected",
        )
        second_server = start_test_server(port)

        # pusher-js reconnects, then subscribes and signs in again with fresh signatures.
        second_socket_id = client.wait_type("connected", since=mark, timeout=40)["socket_id"]
        client.wait_type("subscribed", channel="news", since=mark)
        client.wait_type("subscribed", channel="private-orders", since=mark)
        presence = client.wait_type("subscribed", channel="presence-lobby", since=mark)
        client.wait_type("message", event="pusher:signin_success", since=mark)
        client.wait_type("message", event="pusher_internal:subscription_succeeded", channel="#server-to-user-kim", since=mark)
        sdk = make_sdk(port)
        sdk.trigger(["news", "private-orders"], "after-restart", {"ok": True})
        sdk.send_to_user("kim", "direct-after-restart", {"ok": True})

        public_event = client.wait_type("event", event="after-restart", channel="news")
        private_event = client.wait_type("event", event="after-restart", channel="private-orders")
        user_event = client.wait_type("user_event", event="direct-after-restart")
    finally:
        if not first_stopped:
            first_server.stop()
        if second_server is not None:
            second_server.stop()

    assert second_socket_id != first_socket_id
    assert public_event["data"] == {"ok": True}
    assert private_event["data"] == {"ok": True}
    assert user_event["data"] == {"ok": True}
    assert presence["members"]["ids"] == ["kim"]
    assert client.find("state", current="disconnected") == []
    reauthorized = [request["socket_id"] for request in client.find("auth_request")]
    assert reauthorized.count(second_socket_id) == 3, reauthorized


def wait_for_health(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Wait until GET /health on port returns 200, or fail if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"panel-pusher server exited with code {process.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"panel-pusher server did not return 200 for /health on port {port} within {timeout} s")


def test_cli_server_sigterm_reconnects(pusher_js):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "panel_pusher.cli", "server", "--host", "127.0.0.1", "--port", str(port),
        "--app-id", APP_ID, "--key", APP_KEY, "--secret", APP_SECRET, "--log-level", "WARNING",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_health(port, process)
        client = pusher_js(port)
        client.connect()
        client.subscribe("private-cli")
        make_sdk(port).trigger("private-cli", "from-cli-server", {"n": 1})
        event = client.wait_type("event", event="from-cli-server")

        mark = client.mark()
        process.terminate()
        exit_code = process.wait(15)
        left = client.wait_for(
            lambda record: record.get("type") == "state" and record.get("previous") == "connected",
            since=mark,
            description="state change away from connected",
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(15)
        stderr = process.stderr.read() if process.stderr is not None else ""

    assert event["data"] == {"n": 1}
    assert exit_code == 0, stderr
    # A stopping server closes with a back-off code (4100), so pusher-js keeps reconnecting.
    assert left["current"] == "connecting", left
    assert client.find("state", current="disconnected") == []
