"""The server's Tornado application, and the ways to run it.

``start_server`` runs it on its own IOLoop in a daemon thread and returns an
``EmbeddedServer`` handle. ``run_server`` runs it in the calling thread until
SIGINT or SIGTERM, for the ``panel-pusher server`` command.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback
from tornado.netutil import bind_sockets
from tornado.web import Application

from panel_pusher import __version__
from panel_pusher.defaults import DEFAULT_APP_ID, DEFAULT_HOST, DEFAULT_KEY, DEFAULT_PORT
from panel_pusher.defaults import DEFAULT_SECRET, is_loopback
from panel_pusher.server import http_api, protocol
from panel_pusher.server.channels import DEFAULT_CACHE_TTL, ChannelRegistry
from panel_pusher.server.connections import PusherConnection
from panel_pusher.server.errors import ServerShuttingDown
from panel_pusher.server.webhooks import WebhookSender

logger = logging.getLogger(__name__)

# Largest websocket frame accepted from a client; a larger one closes the
# socket with 1009. Pusher's data limit is 10 KB, plus room for the envelope.
MAX_FRAME_BYTES = 32 * 1024

# Largest HTTP request body: a full batch of 10 events of 10 KB, with room to spare.
MAX_BODY_BYTES = 1024 * 1024

# Seconds that stop() waits for clients to complete the closing handshake before dropping them.
CLOSE_GRACE_SECONDS = 1.0


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server, which serves one app."""

    app_id: str = DEFAULT_APP_ID

    key: str = DEFAULT_KEY

    secret: str = DEFAULT_SECRET

    # URL that receives webhooks; None sends none.
    webhook_url: str | None = None

    # Seconds of client silence before the server sends pusher:ping; also sent
    # to clients in the handshake. Pusher sends 120.
    activity_timeout: int = 120

    # Extra seconds of silence allowed before that ping.
    activity_slack: float = 5.0

    # Seconds to wait for any frame after pusher:ping before closing with 4201.
    pong_timeout: float = 30.0

    enable_client_events: bool = True

    # Client events allowed per second and connection (Pusher's limit is 10).
    client_event_rate: float = protocol.CLIENT_EVENTS_PER_SECOND

    # Seconds that a cache channel keeps its last event.
    cache_ttl: float = DEFAULT_CACHE_TTL

    max_presence_members: int = protocol.MAX_PRESENCE_MEMBERS

    def __post_init__(self) -> None:
        if not self.app_id.isdigit():
            raise ValueError(
                f"app_id must contain only digits, not {self.app_id!r}: the pusher SDK rejects others"
            )
        if self.activity_timeout < 1:
            raise ValueError(f"activity_timeout must be at least 1 second, not {self.activity_timeout!r}")
        if not self.key or not self.secret:
            raise ValueError("key and secret must not be empty")


def check_bind_address(host: str, port: int, secret: str) -> None:
    """Reject a port out of range, and a non-loopback ``host`` with the public default secret."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(
            f"port {port!r} is invalid: use a port number from 1 to 65535, or 0 for a free port"
        )

    if secret == DEFAULT_SECRET and not is_loopback(host):
        raise ValueError(
            f"refusing to listen on {host!r} with the default secret, which is public; "
            "pass a secret of your own, or listen on 127.0.0.1"
        )


class PusherServer:
    """State of one running server: its config, channel registry and webhook sender."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.webhooks = (
            WebhookSender(config.webhook_url, config.key, config.secret) if config.webhook_url else None
        )
        self.registry = ChannelRegistry(
            webhooks=self.webhooks,
            cache_ttl=config.cache_ttl,
            max_presence_members=config.max_presence_members,
        )
        self._liveness: PeriodicCallback | None = None

    def make_app(self) -> Application:
        """Build the Tornado application with the websocket and HTTP routes."""
        kwargs = {"server": self}
        app_prefix = r"/apps/(?P<app_id>[^/]+)"
        routes: list[Any] = [
            (r"/app/(?P<key>[^/]+)", PusherConnection, kwargs),
            (app_prefix + r"/events", http_api.EventsHandler, kwargs),
            (app_prefix + r"/batch_events", http_api.BatchEventsHandler, kwargs),
            (app_prefix + r"/channels", http_api.ChannelsHandler, kwargs),
            (app_prefix + r"/channels/(?P<channel>[^/]+)", http_api.ChannelHandler, kwargs),
            (app_prefix + r"/channels/(?P<channel>[^/]+)/users", http_api.ChannelUsersHandler, kwargs),
            (
                app_prefix + r"/users/(?P<user_id>[^/]+)/terminate_connections",
                http_api.TerminateConnectionsHandler,
                kwargs,
            ),
            (r"/users/(?P<user_id>[^/]+)/terminate_connections", http_api.TerminateConnectionsHandler, kwargs),
            (r"/health", http_api.HealthHandler, kwargs),
            (r"/status", http_api.StatusHandler, kwargs),
        ]
        return Application(
            routes,
            default_handler_class=http_api.NotFoundHandler,
            default_handler_args=kwargs,
            log_function=http_api.log_request,
            websocket_max_message_size=MAX_FRAME_BYTES,
        )

    def start_liveness(self) -> None:
        """Start the periodic check that pings silent sockets and closes unresponsive ones."""
        shortest = min(self.config.activity_timeout, self.config.pong_timeout)
        interval = min(max(shortest / 4, 0.05), 5.0)
        self._liveness = PeriodicCallback(self._check_liveness, interval * 1000)
        self._liveness.start()

    def _check_liveness(self) -> None:
        now = time.monotonic()
        for connection in list(self.registry.connections.values()):
            connection.check_activity(now)

        self.registry.purge_cache()

    async def close_connections(self, grace: float | None = None) -> None:
        """Tell every client to reconnect later, and wait up to ``grace`` seconds for them to go."""
        if grace is None:
            grace = CLOSE_GRACE_SECONDS

        if self._liveness is not None:
            self._liveness.stop()

        goodbye = ServerShuttingDown("server shutting down; reconnect later")
        connections = list(self.registry.connections.values())
        for connection in connections:
            connection.send(protocol.encode(goodbye.error_frame()))
            connection.close(goodbye.code, goodbye.message)

        deadline = time.monotonic() + grace
        while self.registry.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

        for connection in list(self.registry.connections.values()):
            connection.abort()

        # Let the close callbacks of aborted streams run before the loop ends.
        await asyncio.sleep(0)

    def status(self) -> dict[str, Any]:
        """Return the counters that ``GET /status`` reports."""
        registry = self.registry
        stats = registry.stats
        result: dict[str, Any] = {
            "server": "panel_pusher",
            "version": __version__,
            "app_id": self.config.app_id,
            "connections": len(registry.connections),
            "channels": len(registry.channels),
            "users": len(registry.users),
            "messages_in": stats.messages_in,
            "messages_out": stats.messages_out,
            "http_events": stats.http_events,
            "uptime_seconds": round(time.time() - stats.started, 3),
        }
        if self.webhooks is not None:
            result["webhooks_sent"] = self.webhooks.sent
            result["webhooks_failed"] = self.webhooks.failed

        return result


async def serve(
    config: ServerConfig,
    sockets: list[socket.socket],
    stop: asyncio.Event,
    ready: threading.Event | None = None,
) -> None:
    """Serve on ``sockets`` until ``stop`` is set, then close every connection."""
    server = PusherServer(config)
    http_server = HTTPServer(server.make_app(), max_body_size=MAX_BODY_BYTES, xheaders=False)
    http_server.add_sockets(sockets)
    server.start_liveness()

    host, port = sockets[0].getsockname()[:2]
    logger.info("panel_pusher server listening on %s:%d (app id %s)", host, port, config.app_id)
    if ready is not None:
        ready.set()

    await stop.wait()

    http_server.stop()
    connections = len(server.registry.connections)
    await server.close_connections()
    await http_server.close_all_connections()
    logger.info("panel_pusher server on %s:%d stopped (%d connections closed)", host, port, connections)


class EmbeddedServer:
    """Handle of a server running in a daemon thread; use it as a context manager or call ``stop()``."""

    def __init__(self, host: str, port: int, config: ServerConfig) -> None:
        self.host = host
        self.port = port
        self.config = config
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def app_id(self) -> str:
        return self.config.app_id

    @property
    def key(self) -> str:
        return self.config.key

    @property
    def secret(self) -> str:
        return self.config.secret

    @property
    def url(self) -> str:
        """Base HTTP URL, for example ``http://127.0.0.1:6001``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _start(self, sockets: list[socket.socket], timeout: float) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sockets, ready), name=f"panel-pusher-server-{self.port}", daemon=True
        )
        self._thread.start()

        if not ready.wait(timeout):
            raise RuntimeError(f"the server on port {self.port} did not start within {timeout} s")

        if self._error is not None:
            raise RuntimeError(f"the server on port {self.port} failed to start") from self._error

    def _run(self, sockets: list[socket.socket], ready: threading.Event) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.config, sockets, self._stop, ready)

        try:
            asyncio.run(main())
        except BaseException as error:
            self._error = error
            logger.exception("panel_pusher server on port %d failed", self.port)
        finally:
            ready.set()
            for sock in sockets:
                sock.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Tell clients to reconnect later, close them, and stop the thread; safe to call twice."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return

        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                return  # The loop has already closed.

        if thread is threading.current_thread():
            return  # Called from a callback on the server's own loop, which stops after it returns.

        thread.join(timeout)
        if thread.is_alive():
            logger.warning("panel_pusher server on port %d did not stop within %s s", self.port, timeout)

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedServer {self.url} app_id={self.app_id} {state}>"


def start_server(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    app_id: str = DEFAULT_APP_ID,
    key: str = DEFAULT_KEY,
    secret: str = DEFAULT_SECRET,
    webhook_url: str | None = None,
    activity_timeout: int = 120,
    pong_timeout: float = 30.0,
    enable_client_events: bool = True,
    start_timeout: float = 10.0,
    **options: Any,
) -> EmbeddedServer:
    """Start a Pusher-protocol server on its own IOLoop in a daemon thread.

    Return once it listens. ``port=0`` picks a free port (read it from
    ``.port``). Other ``ServerConfig`` fields may be passed as keyword
    arguments. Raise ``OSError`` (``EADDRINUSE``) if the port is taken, and
    ``ValueError`` for a non-loopback ``host`` with the default secret.

    Example::

        with start_server(port=0) as server:
            print(server.url, server.app_id, server.key)
    """
    config = ServerConfig(
        app_id=app_id,
        key=key,
        secret=secret,
        webhook_url=webhook_url,
        activity_timeout=activity_timeout,
        pong_timeout=pong_timeout,
        enable_client_events=enable_client_events,
        **options,
    )
    check_bind_address(host, port, secret)

    # Bound here, in the caller's thread, so that a taken port raises OSError at once.
    sockets = bind_sockets(port, host)
    bound_port = sockets[0].getsockname()[1]

    server = EmbeddedServer(host, bound_port, config)
    try:
        server._start(sockets, start_timeout)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise

    return server


def run_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, config: ServerConfig | None = None) -> None:
    """Serve in the calling thread until SIGINT or SIGTERM, then close clients gracefully."""
    config = config or ServerConfig()
    check_bind_address(host, port, config.secret)
    sockets = bind_sockets(port, host)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(config, sockets, stop)

    try:
        asyncio.run(main())
    finally:
        for sock in sockets:
            sock.close()
