"""Turn settings into a concrete server address, finding or starting the embedded server.

With no server configured, every process on the machine shares one embedded
server on 127.0.0.1 and ``settings.embedded_port``. The first process that
finds nothing there starts it in a daemon thread. The others, including the
workers of ``panel serve --num-procs N``, find it through ``GET /health``.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .defaults import DEFAULT_HOST, DEFAULT_SECRET
from .settings import PusherSettings, get_settings

if TYPE_CHECKING:
    from .server import EmbeddedServer

logger = logging.getLogger(__name__)

# Seconds to wait for /health of a server that may be starting in another process.
EMBEDDED_WAIT_SECONDS = 10.0

HEALTH_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Endpoint:
    """A resolved server: where notify posts and where listeners connect."""

    app_id: str

    key: str

    secret: str = field(repr=False)

    scheme: str

    # Host of the HTTP API.
    api_host: str

    # Host of the websocket endpoint; differs from api_host only on Pusher Channels clusters.
    ws_host: str

    port: int

    # True for the embedded server on 127.0.0.1.
    embedded: bool = False

    @property
    def secure(self) -> bool:
        return self.scheme == "https"


_lock = threading.Lock()

# Resolved embedded endpoints by requested port (0 means a private server on a free port).
_embedded: dict[int, Endpoint] = {}

# Servers this process started, by requested port.
_started: dict[int, EmbeddedServer] = {}


def resolve_endpoint(settings: PusherSettings | None = None) -> Endpoint:
    """Return the server that ``settings`` (or the process default) point at.

    For the embedded server this may start it in this process. Raises
    ``RuntimeError`` if the embedded port is held by a program that is not
    a panel_pusher server.
    """
    settings = settings or get_settings()
    if settings.embedded:
        return embedded_endpoint(settings.embedded_port)

    scheme = settings.scheme or "https"
    port = settings.port or (443 if scheme == "https" else 80)

    if settings.host:
        api_host = ws_host = settings.host
    elif settings.cluster:
        api_host = f"api-{settings.cluster}.pusher.com"
        ws_host = f"ws-{settings.cluster}.pusher.com"
    else:
        # Pusher's legacy default cluster (mt1), as both Pusher clients use it.
        api_host, ws_host = "api.pusherapp.com", "ws.pusherapp.com"

    return Endpoint(
        app_id=settings.app_id,
        key=settings.key,
        secret=settings.secret,
        scheme=scheme,
        api_host=api_host,
        ws_host=ws_host,
        port=port,
    )


def embedded_endpoint(port: int, *, refresh: bool = False) -> Endpoint:
    """Return the embedded server on 127.0.0.1:``port``, starting it if nothing responds.

    ``refresh`` probes again instead of using the endpoint cached for this
    process, and starts a new server if the old one has gone away.
    """
    with _lock:
        if not refresh and port in _embedded:
            return _embedded[port]

        endpoint = _find_or_start(port)
        _embedded[port] = endpoint
        return endpoint


def stop_embedded_servers() -> None:
    """Stop the embedded servers this process started and forget every resolved one."""
    with _lock:
        servers = list(_started.values())
        _started.clear()
        _embedded.clear()

    for server in servers:
        server.stop()


def _find_or_start(port: int) -> Endpoint:
    if port == 0:
        return _start(port)

    started = _started.get(port)
    if started is not None and started.running:
        return _endpoint_of(started.app_id, started.key, started.port)

    info = probe_health(port)
    if info is not None:
        return _endpoint_from_health(port, info)

    try:
        return _start(port)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise

    # Another process bound the port first, so wait until its server responds.
    logger.info("Port %d was taken while starting the embedded server; waiting for its /health", port)
    deadline = time.monotonic() + EMBEDDED_WAIT_SECONDS
    while time.monotonic() < deadline:
        info = probe_health(port)
        if info is not None:
            return _endpoint_from_health(port, info)
        time.sleep(0.1)

    raise RuntimeError(
        f"port {port} on {DEFAULT_HOST} is in use but no panel_pusher server responded to "
        f"GET /health within {EMBEDDED_WAIT_SECONDS:.0f} s; free the port or choose "
        "another with PANEL_PUSHER_PORT"
    )


def _start(port: int) -> Endpoint:
    from .server import start_server

    server = start_server(DEFAULT_HOST, port)
    _started[port] = server
    logger.info("Started the embedded Pusher server on %s:%d", DEFAULT_HOST, server.port)
    return _endpoint_of(server.app_id, server.key, server.port)


def _endpoint_of(app_id: str, key: str, port: int) -> Endpoint:
    # NOTE: /health does not return the secret, so a server found there is
    # assumed to use the default secret. A `panel-pusher server --secret X`
    # on the embedded port needs matching PUSHER_* settings instead.
    return Endpoint(
        app_id=app_id,
        key=key,
        secret=DEFAULT_SECRET,
        scheme="http",
        api_host=DEFAULT_HOST,
        ws_host=DEFAULT_HOST,
        port=port,
        embedded=True,
    )


def _endpoint_from_health(port: int, info: dict[str, Any]) -> Endpoint:
    if info.get("server") != "panel_pusher" or not info.get("app_id") or not info.get("key"):
        raise RuntimeError(
            f"port {port} on {DEFAULT_HOST} is used by a program that is not a "
            "panel_pusher server; choose another port with PANEL_PUSHER_PORT"
        )

    return _endpoint_of(str(info["app_id"]), str(info["key"]), port)


def probe_health(port: int) -> dict[str, Any] | None:
    """Return the JSON of ``GET /health`` on 127.0.0.1:``port``, or None if nothing listens.

    Raises ``RuntimeError`` if something listens but does not respond like a
    panel_pusher server.
    """
    url = f"http://{DEFAULT_HOST}:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_SECONDS) as response:
            body = response.read(64 * 1024)
    except urllib.error.HTTPError as error:
        raise RuntimeError(
            f"GET {url} returned HTTP {error.code}: the port is used by a program that is "
            "not a panel_pusher server; choose another port with PANEL_PUSHER_PORT"
        ) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None

    try:
        info = json.loads(body)
    except ValueError:
        info = None

    if not isinstance(info, dict):
        raise RuntimeError(
            f"GET {url} did not return a JSON object: the port is used by a program that "
            "is not a panel_pusher server; choose another port with PANEL_PUSHER_PORT"
        )

    return info
