"""NotifyListen outside a Panel server: construction, notebook displays, headless use."""

from __future__ import annotations

import threading
import time

import panel as pn
import pytest
from bokeh.document import Document

from panel_pusher import NotifyListen, notify_entity
from panel_pusher.listen.widget import STATUSES

from .models import Order, Room
from .support import in_thread, occupied_channels, wait_until


def test_channel_from_object(settings):
    assert NotifyListen(object=Room(id=3)).channel_name == "private-Room.3"
    assert NotifyListen(object=Order(number="A 1")).channel_name == "private-SalesOrder.A=201"


def test_overrides_and_explicit_channel(settings):
    assert NotifyListen(object=Room(id=3), entity="Lobby").channel_name == "private-Lobby.3"
    assert NotifyListen(channel="private-custom").channel_name == "private-custom"


def test_invalid_explicit_channel_rejected(settings):
    with pytest.raises(ValueError, match="characters outside"):
        NotifyListen(channel="private-bad name!")


def test_object_without_id_rejected(settings):
    with pytest.raises(ValueError, match="primary key"):
        NotifyListen(object=Room())


def test_invalid_actions_rejected(settings):
    with pytest.raises(TypeError, match="callable"):
        NotifyListen(object=Room(id=1), actions={"refresh": "reload"})
    with pytest.raises(ValueError, match="event name"):
        NotifyListen(object=Room(id=1), actions={"": print})

    listener = NotifyListen(object=Room(id=1))
    with pytest.raises(ValueError, match="event name"):
        listener.on("x" * 201)


@pytest.mark.parametrize("action", ["pusher:x", "pusher_internal:member_added", "client-y"])
def test_reserved_action_names_rejected(settings, action):
    with pytest.raises(ValueError, match="reserved prefix"):
        NotifyListen(object=Room(id=1), actions={action: print})

    listener = NotifyListen(object=Room(id=1))
    with pytest.raises(ValueError, match="reserved prefix"):
        listener.on(action)


def test_status_is_read_only(settings):
    listener = NotifyListen(object=Room(id=1))

    assert listener.status == "offline"
    with pytest.raises(TypeError):
        listener.status = "live"
    assert set(STATUSES) == {"connecting", "live", "reconnecting", "offline", "forbidden", "error"}


def test_callbacks_from_actions_and_decorator(settings):
    def first():
        pass

    def second(notification):
        pass

    listener = NotifyListen(object=Room(id=1), actions={"refresh": first})
    assert listener.on("refresh")(second) is second

    assert listener.callbacks("refresh") == [first, second]
    assert listener.callbacks("other") == []


def test_badge_shows_status_and_hides(settings):
    listener = NotifyListen(object=Room(id=1), show_status=False)
    badge = pn.panel(listener)

    assert badge.visible is False
    assert "offline" in badge.object
    listener.show_status = True
    assert badge.visible is True


def test_headless_listener_runs_callbacks(server, settings):
    seen = []
    listener = NotifyListen(object=Room(id=11), actions={"refresh": lambda n: seen.append(threading.current_thread().name)})

    listener.start()
    assert wait_until(lambda: listener.status == "live")
    notify_entity("Room", 11, "refresh")

    assert wait_until(lambda: seen)
    assert seen == ["panel-pusher-callbacks"]
    listener.stop()
    assert listener.status == "offline"
    assert wait_until(lambda: occupied_channels(server) == {})


def test_notebook_redisplay_does_not_double_callbacks(server, settings):
    """Each notebook display renders into a new Document; callbacks still run once."""
    runs = []
    listener = NotifyListen(object=Room(id=12), actions={"refresh": lambda n: runs.append(pn.state.curdoc)})
    badge = pn.panel(listener)
    first_doc, second_doc = Document(), Document()

    in_thread(lambda: badge.get_root(first_doc))
    in_thread(lambda: badge.get_root(second_doc))
    assert wait_until(lambda: listener.status == "live")
    notify_entity("Room", 12, "refresh")

    assert wait_until(lambda: runs)
    time.sleep(0.3)
    assert runs == [first_doc]
    listener.stop()


def test_removed_display_stops_listening(server, settings):
    listener = NotifyListen(object=Room(id=13))
    badge = pn.panel(listener)
    root = in_thread(lambda: badge.get_root(Document()))
    assert wait_until(lambda: listener.status == "live")

    badge._cleanup(root)

    assert listener.status == "offline"
    assert wait_until(lambda: occupied_channels(server) == {})
