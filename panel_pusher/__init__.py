"""Push refreshes into Panel sessions over the Pusher Channels protocol."""

from __future__ import annotations

__version__ = "0.1.0"

from panel_pusher.channels import channel_name
from panel_pusher.listen.hub import ListenerHub, get_hub
from panel_pusher.notification import Notification
from panel_pusher.notify import NotifyError, anotify, notify, notify_entity
from panel_pusher.settings import PusherSettings, get_settings, set_settings
from panel_pusher.single_flight import SingleFlight, asingle_flight, single_flight

# These names load on first use, so that `import panel_pusher` (the server
# and its command line) imports neither Panel nor the server for nothing.
_LAZY_EXPORTS = {
    "EmbeddedServer": "panel_pusher.server",
    "NotifyListen": "panel_pusher.listen.widget",
    "set_authorize": "panel_pusher.auth",
    "start_server": "panel_pusher.server",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'panel_pusher' has no attribute {name!r}")

    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


__all__: list[str] = [
    "EmbeddedServer",
    "ListenerHub",
    "Notification",
    "NotifyError",
    "NotifyListen",
    "PusherSettings",
    "SingleFlight",
    "anotify",
    "asingle_flight",
    "channel_name",
    "get_hub",
    "get_settings",
    "notify",
    "notify_entity",
    "set_authorize",
    "set_settings",
    "single_flight",
    "start_server",
]
