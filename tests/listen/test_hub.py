"""ListenerHub against the real embedded server: counting, dispatch, reconnect, keep-alive."""

from __future__ import annotations

import logging
import threading
import time

import pusher
import pytest

from panel_pusher import endpoint as endpoint_module
from panel_pusher.channels import channel_name
from panel_pusher.defaults import DEFAULT_APP_ID, DEFAULT_KEY, DEFAULT_SECRET
from panel_pusher.endpoint import resolve_endpoint
from panel_pusher.listen.hub import ListenerHub, get_hub
from panel_pusher.notify import notify_entity
from panel_pusher.server import start_server
from panel_pusher.settings import PusherSettings

from .support import ServerProcess, occupied_channels, settings_for, wait_until


class Recorder:
    """A hub subscriber that records what it gets."""

    def __init__(self) -> None:
        self.notifications = []
        self.statuses = []
        self.reconnects = 0
        self.thread_names = set()

    def hub_notification(self, notification):
        self.thread_names.add(threading.current_thread().name)
        self.notifications.append(notification)

    def hub_status(self, status):
        self.statuses.append(status)

    def hub_reconnected(self):
        self.reconnects += 1


def make_hub(settings, **kwargs) -> ListenerHub:
    return ListenerHub(resolve_endpoint(settings), **kwargs)


def subscribe(hub, channel, recorder=None):
    recorder = recorder or Recorder()
    hub.add(channel, recorder)
    assert wait_until(lambda: hub.is_confirmed(channel)), f"{channel} was not confirmed"
    return recorder


def test_one_connection_for_many_channels(server, settings):
    hub = get_hub(settings)
    recorders = [subscribe(hub, channel_name(entity="Room", object_id=n)) for n in range(20)]

    assert server_connections(server) == 1
    assert len(occupied_channels(server)) == 20
    assert all(r.statuses[-1] == "live" for r in recorders)
    assert hub.stats.connections_opened == 1


def server_connections(server) -> int:
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/status", timeout=5) as response:
        return json.loads(response.read())["connections"]


def test_counts_subscribers_per_channel(server, settings):
    hub = get_hub(settings)
    channel = channel_name(entity="Room", object_id=1)
    first, second = Recorder(), Recorder()

    subscribe(hub, channel, first)
    subscribe(hub, channel, second)
    assert hub.channel_counts() == {channel: 2}

    hub.remove(channel, first)
    assert channel in occupied_channels(server)

    hub.remove(channel, second)
    assert wait_until(lambda: channel not in occupied_channels(server))
    assert hub.channel_counts() == {}


def test_dispatch_to_every_subscriber_off_pysher_thread_safe(server, settings):
    hub = get_hub(settings)
    channel = channel_name(entity="Room", object_id=3)
    recorders = [subscribe(hub, channel) for _ in range(3)]
    other = subscribe(hub, channel_name(entity="Room", object_id=4))

    sent = notify_entity("Room", 3, "refresh", user="alice")

    assert wait_until(lambda: all(r.notifications for r in recorders))
    assert [r.notifications[0] for r in recorders] == [sent] * 3
    assert other.notifications == []


def test_undecodable_body_skipped_and_logged(server, settings, caplog):
    hub = get_hub(settings)
    channel = channel_name(entity="Room", object_id=5)
    recorder = subscribe(hub, channel)
    client = pusher.Pusher(app_id=server.app_id, key=server.key, secret=server.secret,
                           host="127.0.0.1", port=server.port, ssl=False)

    with caplog.at_level(logging.WARNING, logger="panel_pusher.listen.hub"):
        client.trigger(channel, "refresh", "not json")
        client.trigger(channel, "refresh", {"entity": "Room"})
        sent = notify_entity("Room", 5, "refresh")
        assert wait_until(lambda: recorder.notifications)

    assert recorder.notifications == [sent]
    assert hub.stats.undecodable_events == 2
    skipped = [r.getMessage() for r in caplog.records if "Skipped event" in r.getMessage()]
    assert len(skipped) == 2
    assert all("'refresh'" in message and channel in message for message in skipped)


def test_subscriber_that_raises_does_not_stop_others(server, settings, caplog):
    class Broken(Recorder):
        def hub_notification(self, notification):
            raise RuntimeError("broken subscriber")

    hub = get_hub(settings)
    channel = channel_name(entity="Room", object_id=6)
    subscribe(hub, channel, Broken())
    healthy = subscribe(hub, channel)

    notify_entity("Room", 6, "refresh")

    assert wait_until(lambda: healthy.notifications)
    assert hub.state == "live"
    assert "broken subscriber" in caplog.text


def test_pysher_never_logs_frames_or_signatures(server, settings, caplog):
    with caplog.at_level(logging.DEBUG):
        hub = get_hub(settings)
        channel = channel_name(entity="Room", object_id=8)
        recorder = subscribe(hub, channel)
        notify_entity("Room", 8, "refresh")
        assert wait_until(lambda: recorder.notifications)

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert server.key + ":" not in text
    assert "auth_signature" not in text
    assert "pusher:subscribe" not in text
    assert not [r for r in caplog.records if r.name.startswith("pysher") and r.levelno < logging.WARNING]


def test_restart_resubscribes_and_replays_once(settings):
    process = ServerProcess().start()
    try:
        hub = make_hub(settings_for(process), backoff_initial=0.1, backoff_max=0.5)
        channel = channel_name(entity="Room", object_id=9)
        recorder = subscribe(hub, channel)
        first_socket = hub.socket_id

        process.kill()
        assert wait_until(lambda: hub.state in ("reconnecting", "offline"))
        process.start()

        assert wait_until(lambda: hub.is_confirmed(channel))
        assert wait_until(lambda: recorder.reconnects == 1)
        assert hub.socket_id != first_socket
        assert "reconnecting" in recorder.statuses or "offline" in recorder.statuses
        assert recorder.statuses[-1] == "live"

        sent = notify_entity("Room", 9, "refresh", settings=settings_for(process))
        assert wait_until(lambda: recorder.notifications)
        assert recorder.notifications == [sent]
        assert recorder.reconnects == 1
    finally:
        hub.stop()
        process.kill()


def test_unreachable_server_backs_off(settings):
    dead = ServerProcess()
    hub = make_hub(settings_for(dead), backoff_initial=0.2, backoff_max=0.4)
    recorder = Recorder()
    try:
        hub.add("private-Room.1", recorder)
        time.sleep(2.0)

        # With back-off of 0.1-0.4 s, 2 s allow at most about 20 attempts; a
        # spinning client makes thousands.
        assert 2 <= hub.stats.connections_opened <= 25
        assert hub.state == "offline"
        assert recorder.statuses[-1] == "offline"
    finally:
        hub.stop()


def test_unknown_key_stops_with_error(server):
    wrong = settings_for(server, key="not-the-key")
    hub = make_hub(wrong, backoff_initial=0.1, backoff_max=0.2)
    recorder = Recorder()
    try:
        hub.add("private-Room.1", recorder)
        assert wait_until(lambda: hub.state == "error")
        opened = hub.stats.connections_opened
        time.sleep(0.5)

        assert hub.stats.connections_opened == opened == 1
        assert recorder.statuses[-1] == "error"
    finally:
        hub.stop()


def test_pings_by_announced_activity_timeout():
    with start_server("127.0.0.1", 0, activity_timeout=1, pong_timeout=1.0) as server:
        hub = make_hub(settings_for(server))
        try:
            subscribe(hub, "private-Room.1")
            assert wait_until(lambda: hub.stats.pings_sent >= 2, timeout=10)

            assert hub.stats.connections_opened == 1
            assert hub.state == "live"
        finally:
            hub.stop()


def test_stopped_hub_rejects_new_subscribers(server, settings):
    hub = get_hub(settings)
    hub.stop()

    with pytest.raises(RuntimeError, match="stopped"):
        hub.add("private-Room.1", Recorder())

    assert get_hub(settings) is not hub


def test_invalid_backoff_rejected(server, settings):
    with pytest.raises(ValueError, match="backoff_initial"):
        make_hub(settings, backoff_initial=0)


class DefaultServerProcess(ServerProcess):
    """A `panel-pusher server` with the default app, as the embedded server runs."""

    app_id = DEFAULT_APP_ID

    key = DEFAULT_KEY

    secret = DEFAULT_SECRET


def test_embedded_server_taken_over_after_owner_dies():
    """A listener on the embedded server of another process starts its own when that one dies."""
    owner = DefaultServerProcess().start()
    embedded = PusherSettings(embedded_port=owner.port)
    try:
        hub = ListenerHub(resolve_endpoint(embedded), backoff_initial=0.1, backoff_max=0.3)
        recorder = subscribe(hub, "private-Room.1")
        assert "private-Room.1" in occupied_channels(owner)

        owner.kill()

        assert wait_until(lambda: recorder.reconnects == 1, timeout=30)
        assert hub.is_confirmed("private-Room.1")
        assert owner.port in endpoint_module._started
        sent = notify_entity("Room", 1, "refresh", settings=embedded)
        assert wait_until(lambda: recorder.notifications)
        assert recorder.notifications == [sent]
    finally:
        hub.stop()
        owner.kill()
        endpoint_module.stop_embedded_servers()
