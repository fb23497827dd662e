"""notify, anotify, notify_entity and `panel-pusher notify` against a real embedded server."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from panel_pusher import NotifyError, Notification, PusherSettings, anotify, notify, notify_entity
from panel_pusher.listen.hub import get_hub
from panel_pusher.validation import MAX_DATA_BYTES


class Room:
    def __init__(self, id):
        self.id = id


def in_thread(fn):
    """Run ``fn`` on a new thread, which has no running event loop, and return its result.

    The main thread has one while another test module keeps a sync Playwright open.
    """
    outcome = {}

    def run():
        try:
            outcome["value"] = fn()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def http_events(server) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/status", timeout=5) as response:
        return json.loads(response.read())["http_events"]


class Inbox:
    def __init__(self):
        self.notifications = []

    def hub_notification(self, notification):
        self.notifications.append(notification)

    def hub_status(self, status):
        pass

    def hub_reconnected(self):
        pass


def listen(channel: str) -> Inbox:
    inbox = Inbox()
    hub = get_hub()
    hub.add(channel, inbox)
    deadline = time.monotonic() + 10
    while not hub.is_confirmed(channel) and time.monotonic() < deadline:
        time.sleep(0.02)
    return inbox


def wait_for(inbox: Inbox, count: int = 1) -> list[Notification]:
    deadline = time.monotonic() + 10
    while len(inbox.notifications) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return inbox.notifications


def test_notify_returns_what_listeners_receive(settings):
    inbox = listen("private-Room.1")

    sent = notify(Room(1), "refresh", user="alice")

    assert isinstance(sent, Notification)
    assert (sent.entity, sent.object_id, sent.action, sent.user) == ("Room", "1", "refresh", "alice")
    assert sent.changed_at.tzinfo is dt.timezone.utc
    assert wait_for(inbox) == [sent]


def test_notify_entity_without_object(settings):
    inbox = listen("private-Room.2")

    sent = notify_entity("Room", 2, "refresh")

    assert wait_for(inbox) == [sent]
    assert sent.user is None


def test_oversized_body_rejected_before_sending(server, settings):
    before = http_events(server)

    with pytest.raises(NotifyError) as raised:
        notify(Room(1), "refresh", user="x" * (MAX_DATA_BYTES + 1))

    assert raised.value.status is None
    assert str(MAX_DATA_BYTES) in str(raised.value)
    assert "bytes" in str(raised.value)
    assert http_events(server) == before


@pytest.mark.parametrize("action", ["", "x" * 201, "pusher:refresh", "client-refresh", 5])
def test_invalid_action_rejected(settings, action):
    with pytest.raises(ValueError):
        notify(Room(1), action)


def test_non_text_user_rejected(settings):
    with pytest.raises(ValueError, match="user must be a string"):
        notify(Room(1), "refresh", user=42)


def test_object_without_id_rejected(settings):
    with pytest.raises(ValueError, match="primary key"):
        notify(Room(None), "refresh")


def test_wrong_secret_raises_status_and_text(server):
    wrong = PusherSettings(
        app_id=server.app_id, key=server.key, secret="wrong-secret",
        host="127.0.0.1", port=server.port, scheme="http",
    )

    with pytest.raises(NotifyError) as raised:
        in_thread(lambda: notify(Room(1), "refresh", settings=wrong))

    assert raised.value.status == 401
    assert raised.value.text
    assert "401" in str(raised.value)
    assert "wrong-secret" not in str(raised.value)


def test_unreachable_server_raises_without_status(server):
    port = server.port
    server.stop()
    stopped = PusherSettings(app_id="1", key="k", secret="s", host="127.0.0.1", port=port, scheme="http")

    with pytest.raises(NotifyError) as raised:
        in_thread(lambda: notify(Room(1), "refresh", settings=stopped))

    assert raised.value.status is None
    assert f"127.0.0.1:{port}" in str(raised.value)


def test_anotify_awaits_send(settings):
    inbox = listen("private-Room.3")

    async def main():
        return await anotify(Room(3), "refresh", user="bob")

    sent = in_thread(lambda: asyncio.run(main()))

    assert wait_for(inbox) == [sent]


def test_anotify_raises_notify_error(server):
    wrong = PusherSettings(
        app_id=server.app_id, key=server.key, secret="wrong-secret",
        host="127.0.0.1", port=server.port, scheme="http",
    )

    async def main():
        await anotify(Room(3), "refresh", settings=wrong)

    with pytest.raises(NotifyError) as raised:
        in_thread(lambda: asyncio.run(main()))

    assert raised.value.status == 401


def test_notify_on_loop_does_not_wait(settings):
    """On a thread running an event loop, notify returns before the server responds."""
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(1)
    silent = PusherSettings(
        app_id="1", key="k", secret="s", host="127.0.0.1", port=mute.getsockname()[1], scheme="http"
    )

    async def main():
        return notify(Room(4), "refresh", settings=silent)

    try:
        # A blocking send would raise NotifyError after the HTTP timeout.
        sent = in_thread(lambda: asyncio.run(main()))
        assert sent.action == "refresh"
    finally:
        mute.close()


def test_notify_on_event_loop_delivers(settings):
    inbox = listen("private-Room.4")

    async def main():
        return notify(Room(4), "refresh")

    sent = in_thread(lambda: asyncio.run(main()))

    assert wait_for(inbox) == [sent]


def test_notify_on_event_loop_logs_failure(server, caplog):
    wrong = PusherSettings(
        app_id=server.app_id, key=server.key, secret="wrong-secret",
        host="127.0.0.1", port=server.port, scheme="http",
    )

    async def main():
        return notify(Room(5), "refresh", settings=wrong)

    sent = in_thread(lambda: asyncio.run(main()))

    deadline = time.monotonic() + 10
    while "was not sent" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.02)
    assert f"(message {sent.message_id}) was not sent" in caplog.text
    assert "401" in caplog.text


def cli_env(settings) -> dict[str, str]:
    return {
        **os.environ,
        "PUSHER_APP_ID": settings.app_id, "PUSHER_APP_KEY": settings.key,
        "PUSHER_APP_SECRET": settings.secret, "PUSHER_HOST": "127.0.0.1",
        "PUSHER_PORT": str(settings.port), "PUSHER_SCHEME": "http",
    }


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "panel_pusher.cli", "notify", *args],
        env=env, capture_output=True, text=True, timeout=60,
    )


def test_cli_notifies_from_another_process(settings):
    inbox = listen("private-Chat=20Room.7")

    result = run_cli("Chat Room", "7", "refresh", "--user", "cron", env=cli_env(settings))

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    received = wait_for(inbox)
    assert [n.message_id for n in received] == [printed["message_id"]]
    assert received[0].user == "cron"
    assert received[0].entity == "Chat Room"


def test_cli_reports_bad_settings(settings):
    env = {**cli_env(settings), "PUSHER_APP_ID": "abc"}

    result = run_cli("Room", "1", "refresh", env=env)

    assert result.returncode == 1
    assert "PUSHER_APP_ID" in result.stderr
    assert "digits" in result.stderr


def test_cli_reports_invalid_action(settings):
    result = run_cli("Room", "1", "pusher:x", env=cli_env(settings))

    assert result.returncode == 1
    assert "reserved prefix" in result.stderr


def test_cli_requires_arguments(settings):
    result = run_cli("Room", env=cli_env(settings))

    assert result.returncode == 2
    assert "ID" in result.stderr


def test_cli_without_embedded_server(settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUSHER_", "PANEL_PUSHER_"))}
    env["PANEL_PUSHER_PORT"] = "1"

    result = run_cli("Room", "1", "refresh", env=env)

    assert result.returncode == 1
    assert "no panel_pusher server answers" in result.stderr
