"""Push refreshes into Panel sessions over the Pusher Channels protocol."""

from __future__ import annotations

__version__ = "0.1.0"

# Listening and notifying names load on first use, so that `import
# panel_pusher` (the server and its CLI) does not import Panel.
_LAZY_EXPORTS = {
    "EmbeddedServer": "panel_pusher.server",
    "ListenerHub": "panel_pusher.listen.hub",
    "Notification": "panel_pusher.notification",
    "NotifyError": "panel_pusher.notify",
    "NotifyListen": "panel_pusher.listen.widget",
    "PusherSettings": "panel_pusher.settings",
    "anotify": "panel_pusher.notify",
    "asingle_flight": "panel_pusher.single_flight",
    "channel_name": "panel_pusher.channels",
    "get_hub": "panel_pusher.listen.hub",
    "get_settings": "panel_pusher.settings",
    "notify": "panel_pusher.notify",
    "notify_entity": "panel_pusher.notify",
    "set_authorize": "panel_pusher.auth",
    "set_settings": "panel_pusher.settings",
    "single_flight": "panel_pusher.single_flight",
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
