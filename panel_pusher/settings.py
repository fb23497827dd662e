"""Connection settings for a Pusher Channels server, read from code or the environment.

With no server configured, the package uses the embedded server on
127.0.0.1 (see ``panel_pusher.endpoint``). A configured server needs the app
id, key and secret together, plus a cluster (Pusher Channels) or a host
(soketi, Laravel Reverb, a stand-alone embedded server).

Example::

    PUSHER_APP_ID=1001 PUSHER_APP_KEY=key PUSHER_APP_SECRET=secret \\
    PUSHER_HOST=127.0.0.1 PUSHER_PORT=6001 PUSHER_SCHEME=http panel serve app.py
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping

import param

from .defaults import DEFAULT_PORT
from .validation import CHANNEL_NAME_PATTERN

SCHEMES = ("http", "https")

# Environment variable for each parameter; the PUSHER_* names are the ones
# Laravel's broadcasting configuration uses.
ENV_NAMES = {
    "app_id": "PUSHER_APP_ID",
    "key": "PUSHER_APP_KEY",
    "secret": "PUSHER_APP_SECRET",
    "cluster": "PUSHER_APP_CLUSTER",
    "host": "PUSHER_HOST",
    "port": "PUSHER_PORT",
    "scheme": "PUSHER_SCHEME",
    "channel_prefix": "PANEL_PUSHER_CHANNEL_PREFIX",
    "embedded_port": "PANEL_PUSHER_PORT",
}

# Parameters that, when any is set, mean "a server is configured".
# Pusher cluster names such as "eu", "mt1" or "ap-southeast-1": they become part of a host name.
_CLUSTER_PATTERN = re.compile(r"^[A-Za-z0-9-]+$")

_SERVER_PARAMS = ("app_id", "key", "secret", "cluster", "host")


class PusherSettings(param.Parameterized):
    """
    Connection settings of a Pusher server, for notify and for listeners.

    Leave everything unset to use the embedded server on 127.0.0.1. Set
    ``app_id``, ``key`` and ``secret`` together, and ``cluster`` or ``host``,
    to use Pusher Channels or another Pusher-protocol server.

    Example::

        settings = PusherSettings(
            app_id="1001", key="key", secret="secret",
            host="127.0.0.1", port=6001, scheme="http",
        )
    """

    app_id = param.String(default=None, allow_None=True, doc="""
        Numeric app id of the Pusher app (PUSHER_APP_ID).""")

    key = param.String(default=None, allow_None=True, doc="""
        Public app key (PUSHER_APP_KEY). Listeners connect with it.""")

    secret = param.String(default=None, allow_None=True, doc="""
        App secret (PUSHER_APP_SECRET). Signs HTTP API requests and private
        channel subscriptions; never sent over the wire or logged.""")

    cluster = param.String(default=None, allow_None=True, doc="""
        Pusher Channels cluster such as "eu" or "mt1" (PUSHER_APP_CLUSTER).
        Ignored when host is set.""")

    host = param.String(default=None, allow_None=True, doc="""
        Host of a self-hosted Pusher-protocol server (PUSHER_HOST).""")

    port = param.Integer(default=None, allow_None=True, bounds=(1, 65535), doc="""
        Port of the server (PUSHER_PORT); 443 for https and 80 for http when
        unset.""")

    scheme = param.Selector(default=None, objects=[None, *SCHEMES], doc="""
        "https" (the default for a configured server) or "http"
        (PUSHER_SCHEME). Listeners use wss or ws accordingly.""")

    channel_prefix = param.String(default="", doc="""
        Text put after "private-" in every channel name, so that several
        apps can share one Pusher app (PANEL_PUSHER_CHANNEL_PREFIX).""")

    embedded_port = param.Integer(default=DEFAULT_PORT, bounds=(0, 65535), doc="""
        Port of the embedded server on 127.0.0.1 when no server is
        configured (PANEL_PUSHER_PORT). 0 starts a private embedded server
        on a free port in this process.""")

    def __init__(self, **params):
        super().__init__(**params)
        self.check()

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={'***' if name == 'secret' and value else repr(value)}"
            for name, value in self.param.values().items()
            if name != "name" and value != self.param[name].default
        )
        return f"PusherSettings({fields})"

    __str__ = __repr__

    @property
    def embedded(self) -> bool:
        """True when no server is configured, so the embedded server is used."""
        return all(getattr(self, name) is None for name in _SERVER_PARAMS)

    def check(self, names: Mapping[str, str] | None = None) -> PusherSettings:
        """Raise ``ValueError`` if the settings are partial or invalid, else return them.

        ``names`` maps parameter names to the names shown in messages, for
        example environment variable names.
        """
        names = {**{n: n for n in ENV_NAMES}, **(names or {})}

        if self.channel_prefix and not CHANNEL_NAME_PATTERN.match(self.channel_prefix):
            raise ValueError(
                f"{names['channel_prefix']}={self.channel_prefix!r} is invalid: use only "
                "letters, digits and _-=@,.; (for example 'myapp-')"
            )

        if self.embedded:
            if self.port is not None or self.scheme is not None:
                stray = names["port"] if self.port is not None else names["scheme"]
                raise ValueError(
                    f"{stray} is set but no server is: set {names['app_id']}, "
                    f"{names['key']}, {names['secret']} and {names['host']} or "
                    f"{names['cluster']}, or unset {stray} to use the embedded server"
                )
            return self

        missing = [names[n] for n in ("app_id", "key", "secret") if getattr(self, n) is None]
        if missing:
            raise ValueError(
                f"incomplete Pusher settings: {', '.join(missing)} missing. Set "
                f"{names['app_id']}, {names['key']} and {names['secret']} together, "
                "or none of them to use the embedded server"
            )

        if not self.app_id.isdigit():
            raise ValueError(
                f"{names['app_id']}={self.app_id!r} is invalid: the app id must be "
                "digits only, for example 1001"
            )

        for name in ("key", "secret", "host", "cluster"):
            value = getattr(self, name)
            if value is not None and (not value or value != value.strip()):
                raise ValueError(
                    f"{names[name]}={value!r} is invalid: it must be non-empty "
                    "and have no surrounding spaces"
                )

        if self.cluster is not None and not _CLUSTER_PATTERN.match(self.cluster):
            raise ValueError(
                f"{names['cluster']}={self.cluster!r} is invalid: a cluster name has only "
                "letters, digits and '-', for example 'eu' or 'mt1'"
            )

        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PusherSettings:
        """Read settings from PUSHER_* and PANEL_PUSHER_* environment variables.

        Empty variables count as unset. Raises ``ValueError`` naming the
        variable and the accepted form when a value is invalid or the
        configuration is partial.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}

        for name, env_name in ENV_NAMES.items():
            raw = environ.get(env_name, "").strip()
            if not raw:
                continue

            if name in ("port", "embedded_port"):
                values[name] = _parse_port(env_name, raw, allow_zero=name == "embedded_port")
            elif name == "scheme":
                if raw.lower() not in SCHEMES:
                    raise ValueError(
                        f"{env_name}={raw!r} is invalid: use 'https' or 'http'"
                    )
                values[name] = raw.lower()
            else:
                values[name] = raw

        settings = cls.__new__(cls)
        param.Parameterized.__init__(settings, **values)
        return settings.check(ENV_NAMES)


def _parse_port(env_name: str, raw: str, *, allow_zero: bool) -> int:
    low = 0 if allow_zero else 1
    if not raw.isdigit() or not low <= int(raw) <= 65535:
        raise ValueError(
            f"{env_name}={raw!r} is invalid: use a port number from {low} to 65535"
        )

    return int(raw)


_default_lock = threading.Lock()

_default: PusherSettings | None = None


def get_settings() -> PusherSettings:
    """Return the process default settings, read from the environment on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PusherSettings.from_env()
        return _default


def set_settings(settings: PusherSettings | None) -> None:
    """Set the process default settings; ``None`` rereads the environment on next use."""
    global _default
    if settings is not None and not isinstance(settings, PusherSettings):
        raise TypeError(
            f"settings must be a PusherSettings, not {type(settings).__name__}"
        )

    with _default_lock:
        _default = settings
