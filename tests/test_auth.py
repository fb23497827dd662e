"""Authorization: the default hook and the REST routes on a real Panel server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pysher
import pytest
import requests

from panel_pusher import notify_entity, set_authorize
from panel_pusher.auth import default_authorize, is_authorized, request_has_auth
from panel_pusher.channels import ObjectRef
from panel_pusher.rest import ROUTES
from panel_pusher.signatures import channel_auth

SOCKET_ID = "1234.5678"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def serve(**kwargs):
    import panel as pn

    port = free_port()
    thread = pn.serve(
        {"app": lambda: pn.pane.Markdown("app")}, port=port, address="127.0.0.1", threaded=True,
        show=False, extra_patterns=ROUTES, websocket_origin=[f"127.0.0.1:{port}"], **kwargs,
    )
    assert wait_until(lambda: _answers(port))
    return port, thread


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/rest/pusher/key", timeout=2).status_code in (200, 500)
    except requests.ConnectionError:
        return False


@pytest.fixture
def panel_port(settings):
    port, thread = serve()
    yield port
    thread.stop()


def post_auth(port, data=None, json_body=None, session=None):
    sender = session or requests
    return sender.post(f"http://127.0.0.1:{port}/rest/pusher/auth", data=data, json=json_body, timeout=10)


def test_default_allows_without_authentication():
    assert default_authorize(None, object()) is True


@pytest.mark.parametrize(("user", "allowed"), [(None, False), ("", False), ("guest", False), ("alice", True)])
def test_default_with_authentication_denies_anonymous(user, allowed):
    token = request_has_auth.set(True)
    try:
        assert default_authorize(user, object()) is allowed
    finally:
        request_has_auth.reset(token)


def test_hook_that_raises_denies(caplog):
    def broken(user, obj):
        raise RuntimeError("database down")

    assert is_authorized(broken, "alice", object()) is False
    assert "database down" in caplog.text


def test_hook_must_return_true_not_truthy():
    assert is_authorized(lambda user, obj: "yes", "alice", object()) is False


def test_set_authorize_rejects_non_callable():
    with pytest.raises(TypeError, match="callable"):
        set_authorize("allow")


def test_key_route_returns_public_settings(panel_port, settings):
    response = requests.get(f"http://127.0.0.1:{panel_port}/rest/pusher/key", timeout=10)

    assert response.status_code == 200
    body = response.json()
    assert body["key"] == settings.key
    assert (body["host"], body["port"], body["forceTLS"]) == ("127.0.0.1", settings.port, False)
    assert settings.secret not in response.text


def test_auth_route_signs_allowed_channel(panel_port, settings):
    response = post_auth(panel_port, data={"socket_id": SOCKET_ID, "channel_name": "private-Room.1"})

    assert response.status_code == 200, response.text
    expected = channel_auth(settings.key, settings.secret, SOCKET_ID, "private-Room.1")
    assert response.json() == {"auth": expected}


def test_auth_route_accepts_json(panel_port, settings):
    response = post_auth(panel_port, json_body={"socket_id": SOCKET_ID, "channel_name": "private-Room.1"})

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"channel_name": "private-Room.1"}, "required"),
        ({"socket_id": SOCKET_ID}, "required"),
        ({"socket_id": "abc", "channel_name": "private-Room.1"}, "invalid socket_id"),
        ({"socket_id": SOCKET_ID, "channel_name": "Room.1"}, "not a private channel"),
        ({"socket_id": SOCKET_ID, "channel_name": "presence-Room.1"}, "not a private channel"),
        ({"socket_id": SOCKET_ID, "channel_name": "private-Room 1"}, "invalid channel_name"),
        ({"socket_id": SOCKET_ID, "channel_name": "private-no-id"}, "invalid channel_name"),
        ({"socket_id": SOCKET_ID, "channel_name": "private-" + "x" * 300}, "invalid channel_name"),
    ],
)
def test_auth_route_rejects_bad_input(panel_port, data, reason):
    response = post_auth(panel_port, data=data)

    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_auth_route_rejects_malformed_json(panel_port):
    response = requests.post(
        f"http://127.0.0.1:{panel_port}/rest/pusher/auth", data="{not json",
        headers={"Content-Type": "application/json"}, timeout=10,
    )

    assert response.status_code == 400


def test_auth_route_uses_same_hook(panel_port):
    seen = []

    def only_room_one(user, obj):
        seen.append(obj)
        return obj.object_id == "1"

    set_authorize(only_room_one)

    allowed = post_auth(panel_port, data={"socket_id": SOCKET_ID, "channel_name": "private-Chat=20Room.1"})
    denied = post_auth(panel_port, data={"socket_id": SOCKET_ID, "channel_name": "private-Chat=20Room.2"})

    assert allowed.status_code == 200
    assert denied.status_code == 403
    assert denied.json() == {"error": "forbidden"}
    assert seen[0] == ObjectRef(entity="Chat Room", object_id="1", channel="private-Chat=20Room.1")


def test_basic_auth_denies_anonymous_and_signs_for_user(settings):
    port, thread = serve(basic_auth="opensesame", cookie_secret="test-cookie-secret")
    try:
        anonymous = post_auth(port, data={"socket_id": SOCKET_ID, "channel_name": "private-Room.1"})

        user = requests.Session()
        login = user.post(
            f"http://127.0.0.1:{port}/login", data={"username": "alice", "password": "opensesame"},
            allow_redirects=False, timeout=10,
        )
        signed_in = post_auth(port, data={"socket_id": SOCKET_ID, "channel_name": "private-Room.1"}, session=user)
    finally:
        thread.stop()

    assert anonymous.status_code == 403
    assert login.status_code in (302, 303), login.text
    assert signed_in.status_code == 200, signed_in.text


def test_pysher_subscribes_through_auth_route(panel_port, settings):
    """An external client authorised by the REST route receives notifications."""
    received = []
    client = pysher.Pusher(
        settings.key, secure=False, custom_host="127.0.0.1", port=settings.port,
        auth_endpoint=f"http://127.0.0.1:{panel_port}/rest/pusher/auth", log_level=30,
    )

    def established(data):
        channel = client.subscribe("private-Room.9")
        channel.bind("refresh", received.append)
        channel.bind("pusher_internal:subscription_succeeded", lambda data: received.append("subscribed"))

    client.connection.bind("pusher:connection_established", established)
    client.connect()
    try:
        assert wait_until(lambda: "subscribed" in received)
        sent = notify_entity("Room", 9, "refresh")
        assert wait_until(lambda: len(received) == 2)
    finally:
        client.connection.disconnect_called = True
        client.connection.socket.keep_running = False
        raw = client.connection.socket.sock
        if raw is not None and raw.sock is not None:
            raw.sock.shutdown(socket.SHUT_RDWR)

    assert json.loads(received[1])["message_id"] == sent.message_id


def test_panel_serve_loads_plugin(settings, tmp_path):
    app = tmp_path / "app.py"
    app.write_text("import panel as pn\npn.pane.Markdown('app').servable()\n")
    port = free_port()
    env = {
        **os.environ,
        "PUSHER_APP_ID": settings.app_id, "PUSHER_APP_KEY": settings.key,
        "PUSHER_APP_SECRET": settings.secret, "PUSHER_HOST": "127.0.0.1",
        "PUSHER_PORT": str(settings.port), "PUSHER_SCHEME": "http",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", str(app), "--plugins", "panel_pusher.rest",
         "--port", str(port), "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: _answers(port), timeout=60)
        key = requests.get(f"http://127.0.0.1:{port}/rest/pusher/key", timeout=10)
        auth = post_auth(port, data={"socket_id": SOCKET_ID, "channel_name": "private-Room.1"})
    finally:
        process.terminate()
        process.wait(20)

    assert key.json()["key"] == settings.key
    assert auth.status_code == 200
