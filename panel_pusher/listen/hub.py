"""The listener hub: one pysher connection per process and server, shared by every listener.

Subscriptions are counted per channel: the hub subscribes on the first
subscriber and unsubscribes after the last. It hands decoded notifications
to subscribers, which move them onto their own session's loop.

pysher 1.0.8 needs care (see the notes on each step below):

- each connection attempt is a fresh ``pysher.Pusher`` whose own reconnect
  loop is switched off, because its reconnect interval can stick at 0 after
  a ``pusher:error`` 4200 and then spins without delay. The hub's supervisor
  thread reconnects instead, with capped exponential back-off and jitter;
- subscriptions are sent only from the ``pusher:connection_established``
  handler (or later), signed over the new socket id, because pysher's own
  resubscribe sends no signatures;
- pysher pings only after 120 s of silence whatever the server announces,
  so the supervisor pings by the announced ``activity_timeout``;
- pysher logs every frame, signatures included, at INFO, so its logger is
  set to WARNING.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pysher
import websocket

from ..endpoint import Endpoint, embedded_endpoint, resolve_endpoint
from ..notification import Notification
from ..settings import PusherSettings, get_settings
from ..signatures import channel_auth

logger = logging.getLogger(__name__)

CONNECTING = "connecting"
LIVE = "live"
RECONNECTING = "reconnecting"
OFFLINE = "offline"
ERROR = "error"

# Close and error codes of the Pusher protocol that mean "do not reconnect unchanged".
FATAL_CODES = range(4000, 4100)

# Seconds a connection attempt may take from opening the socket to the handshake.
CONNECT_TIMEOUT_SECONDS = 10.0

# Seconds to wait for any frame after the hub sent pusher:ping.
PONG_TIMEOUT_SECONDS = 30.0

# Used until the server announces its activity timeout; Pusher's own value.
DEFAULT_ACTIVITY_TIMEOUT = 120.0

# Seconds a connection must last for the back-off to start again from its initial delay.
STABLE_SECONDS = 10.0

# Consecutive failed attempts after which the hub reports "offline" rather than "reconnecting".
OFFLINE_AFTER_ATTEMPTS = 3


class Subscriber(Protocol):
    """Listener interface of the hub: each method may be called from any thread and must return fast."""

    def hub_notification(self, notification: Notification) -> None: ...

    def hub_status(self, status: str) -> None: ...

    def hub_reconnected(self) -> None: ...


@dataclass(eq=False)
class _Attempt:
    """One pysher connection, from opening to close."""

    client: pysher.Pusher

    opened_at: float

    last_inbound: float

    socket_id: str | None = None

    activity_timeout: float = DEFAULT_ACTIVITY_TIMEOUT

    ping_sent_at: float | None = None

    # Pusher error code received on this connection, if any.
    error_code: int | None = None

    # Channels sent a pusher:subscribe on this connection.
    subscribed: set[str] = field(default_factory=set)


@dataclass
class HubStats:
    """Counters of one hub, for tests, benchmarks and the status badge."""

    connections_opened: int = 0

    handshakes: int = 0

    events_received: int = 0

    undecodable_events: int = 0

    pings_sent: int = 0


class ListenerHub:
    """One shared pysher connection to one Pusher server, with channels counted per subscriber."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        pong_timeout: float = PONG_TIMEOUT_SECONDS,
    ) -> None:
        if backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError(
                f"back-off must satisfy 0 < backoff_initial <= backoff_max, not "
                f"{backoff_initial!r} and {backoff_max!r}"
            )

        self.endpoint = endpoint
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connect_timeout = connect_timeout
        self.pong_timeout = pong_timeout
        self.stats = HubStats()

        self._lock = threading.RLock()
        # Subscribers per channel, in order of arrival.
        self._subscribers: dict[str, list[Subscriber]] = {}
        # Channels confirmed by pusher_internal:subscription_succeeded on the current connection.
        self._confirmed: set[str] = set()
        # Channels the server rejected on the current connection.
        self._rejected: set[str] = set()
        # Subscribers that were live before a connection loss and need a replay once back.
        self._replay: dict[str, list[Subscriber]] = {}
        self._state = CONNECTING
        self._attempt: _Attempt | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- public interface --------------------------------------------------

    @property
    def state(self) -> str:
        """Connection state: connecting, live, reconnecting, offline or error."""
        return self._state

    @property
    def socket_id(self) -> str | None:
        attempt = self._attempt
        return attempt.socket_id if attempt else None

    def channel_counts(self) -> dict[str, int]:
        """Return the number of subscribers on each channel."""
        with self._lock:
            return {channel: len(subs) for channel, subs in self._subscribers.items()}

    def is_confirmed(self, channel: str) -> bool:
        """Tell whether the server confirmed the subscription to ``channel`` on the current connection."""
        with self._lock:
            return channel in self._confirmed

    def add(self, channel: str, subscriber: Subscriber) -> None:
        """Add a subscriber to ``channel``, subscribing the connection if it is the first."""
        with self._lock:
            if self._stopping.is_set():
                raise RuntimeError("the listener hub has been stopped; get a new one with get_hub()")

            subscribers = self._subscribers.setdefault(channel, [])
            if any(existing is subscriber for existing in subscribers):
                return
            subscribers.append(subscriber)
            first = len(subscribers) == 1

            attempt = self._attempt
            if first and attempt is not None and attempt.socket_id is not None:
                self._send_subscribe(attempt, channel)

            status = self._status_for(channel)
            self._start()

        self._call(subscriber.hub_status, status)

    def remove(self, channel: str, subscriber: Subscriber) -> None:
        """Remove a subscriber, unsubscribing the connection after the last one on ``channel``."""
        with self._lock:
            subscribers = self._subscribers.get(channel)
            if not subscribers:
                return

            remaining = [existing for existing in subscribers if existing is not subscriber]
            replay = self._replay.get(channel)
            if replay:
                self._replay[channel] = [s for s in replay if s is not subscriber]

            if remaining:
                self._subscribers[channel] = remaining
                return

            del self._subscribers[channel]
            self._replay.pop(channel, None)
            self._confirmed.discard(channel)
            self._rejected.discard(channel)

            attempt = self._attempt
            if attempt is not None and channel in attempt.subscribed:
                attempt.subscribed.discard(channel)
                try:
                    attempt.client.unsubscribe(channel)
                except Exception:
                    logger.exception("Unsubscribing from %s failed", channel)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and stop reconnecting; subscribers see "offline"."""
        self._stopping.set()
        self._wake.set()

        with self._lock:
            attempt = self._attempt

        if attempt is not None:
            self._close_socket(attempt)

        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout)

        self._set_state(OFFLINE)

    # -- connection management (supervisor thread) -------------------------

    def _start(self) -> None:
        if self._supervisor is None:
            self._supervisor = threading.Thread(
                target=self._supervise, name="panel-pusher-hub", daemon=True
            )
            self._supervisor.start()

    def _supervise(self) -> None:
        failures = 0

        while not self._stopping.is_set():
            try:
                attempt = self._open()
                self._watch(attempt)
            except Exception:
                logger.exception("The listener connection to %s failed", self._where())
                attempt = None

            self._connection_lost(attempt)
            if self._stopping.is_set():
                break

            code = attempt.error_code if attempt else None
            if code is not None and code in FATAL_CODES:
                logger.error(
                    "The Pusher server at %s rejected the connection with error %d; not reconnecting",
                    self._where(), code,
                )
                self._set_state(ERROR)
                return

            # A connection that lived a while resets the back-off; one that
            # the server drops right after the handshake does not.
            stable = (
                attempt is not None and attempt.socket_id is not None
                and time.monotonic() - attempt.opened_at >= STABLE_SECONDS
            )
            failures = 0 if stable else failures + 1
            delay = self._backoff(max(failures, 1))
            self._set_state(OFFLINE if failures >= OFFLINE_AFTER_ATTEMPTS else RECONNECTING)
            logger.info("Reconnecting to %s in %.1f s (failed attempts: %d)", self._where(), delay, failures)

            self._wake.clear()
            self._wake.wait(delay)

            if failures and self.endpoint.embedded:
                self._find_embedded_server()

    def _backoff(self, failures: int) -> float:
        """Return the delay before the next attempt: exponential, capped, with jitter, never 0."""
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (failures - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _find_embedded_server(self) -> None:
        # The process that ran the embedded server may have exited, so take
        # over its port, or find the process that already did.
        try:
            endpoint = embedded_endpoint(self.endpoint.port, refresh=True)
        except Exception as error:
            logger.warning("No embedded Pusher server on port %d: %s", self.endpoint.port, error)
            return

        if endpoint != self.endpoint:
            logger.warning("The embedded Pusher server on port %d changed its app; reconnecting to it", endpoint.port)
            self.endpoint = endpoint

    def _open(self) -> _Attempt:
        endpoint = self.endpoint
        client = pysher.Pusher(
            endpoint.key,
            secure=endpoint.secure,
            custom_host=endpoint.ws_host,
            # pysher defaults to 443 even for ws://, so the port is always given.
            port=endpoint.port,
            auto_sub=False,
            # pysher logs every frame, signatures included, at INFO.
            log_level=logging.WARNING,
            daemon=True,
        )
        now = time.monotonic()
        attempt = _Attempt(client=client, opened_at=now, last_inbound=now)
        connection = client.connection

        # pysher's reconnect loop only runs while disconnect_called is False;
        # the supervisor reconnects instead, with a fresh client.
        connection.disconnect_called = True

        # Receive every channel event directly, not through pysher's Channel
        # objects, whose bindings a second subscribe would drop.
        connection.event_handler = lambda event, data, channel: self._on_channel_event(attempt, event, data, channel)

        connection.bind("pusher:connection_established", lambda data: self._on_established(attempt, data))
        connection.bind("pusher:pong", lambda data: self._on_inbound(attempt))
        connection.bind("pusher:ping", lambda data: self._on_inbound(attempt))
        # Replace pysher's error handler: it would disconnect from inside its
        # own thread or reconnect with an interval of 0.
        connection.event_callbacks["pusher:error"] = [(lambda data: self._on_error(attempt, data), (), {})]

        with self._lock:
            self._attempt = attempt
            self.stats.connections_opened += 1

        logger.debug("Connecting to %s", self._where())
        client.connect()
        return attempt

    def _watch(self, attempt: _Attempt) -> None:
        """Wait until the attempt's socket closes, pinging by the activity timeout."""
        thread = attempt.client.connection

        while thread.is_alive():
            if self._stopping.is_set():
                self._close_socket(attempt)

            now = time.monotonic()
            if attempt.socket_id is None:
                # NOTE: closing cannot interrupt a TCP connect that hangs (a
                # remote host that drops packets); that waits for the OS timeout.
                if now - attempt.opened_at > self.connect_timeout:
                    logger.warning("No handshake from %s within %.0f s; reconnecting", self._where(), self.connect_timeout)
                    self._close_socket(attempt)
                wait = 0.5
            elif attempt.ping_sent_at is not None and attempt.last_inbound < attempt.ping_sent_at:
                waited = now - attempt.ping_sent_at
                if waited >= self.pong_timeout:
                    logger.warning("No reply to ping from %s within %.0f s; reconnecting", self._where(), self.pong_timeout)
                    self._close_socket(attempt)
                    wait = 0.5
                else:
                    wait = self.pong_timeout - waited
            else:
                idle = now - attempt.last_inbound
                if idle >= attempt.activity_timeout:
                    self._send_ping(attempt)
                    wait = self.pong_timeout
                else:
                    wait = attempt.activity_timeout - idle

            thread.join(min(max(wait, 0.05), 1.0))

    def _send_ping(self, attempt: _Attempt) -> None:
        attempt.ping_sent_at = time.monotonic()
        self.stats.pings_sent += 1
        attempt.client.connection.send_event("pusher:ping", {})

    def _close_socket(self, attempt: _Attempt) -> None:
        app = attempt.client.connection.socket
        if app is None:
            return

        # WebSocketApp.close() leaves websocket-client's reader waiting in
        # select() for up to pysher's ping_timeout (100 s); shutting the TCP
        # socket down wakes it at once.
        app.keep_running = False
        connection = getattr(app, "sock", None)
        raw = getattr(connection, "sock", None)
        try:
            if connection is not None and connection.connected:
                connection.send_close()
            if raw is not None:
                raw.shutdown(socket.SHUT_RDWR)
        except (OSError, websocket.WebSocketException):
            logger.debug("Closing the listener socket failed", exc_info=True)

    def _connection_lost(self, attempt: _Attempt | None) -> None:
        with self._lock:
            if attempt is not None and attempt is self._attempt:
                self._attempt = None

            for channel in self._confirmed:
                self._replay[channel] = list(self._subscribers.get(channel, ()))
            self._confirmed.clear()
            self._rejected.clear()

        if attempt is not None and attempt.socket_id is not None:
            logger.info("Lost the listener connection to %s", self._where())

    # -- pysher callbacks (pysher's thread) --------------------------------

    def _on_inbound(self, attempt: _Attempt) -> None:
        attempt.last_inbound = time.monotonic()

    def _on_established(self, attempt: _Attempt, data: Any) -> None:
        try:
            self._on_inbound(attempt)
            timeout = _activity_timeout(data)

            with self._lock:
                if attempt is not self._attempt:
                    return

                attempt.socket_id = attempt.client.connection.socket_id
                attempt.activity_timeout = timeout
                self.stats.handshakes += 1
                for channel in self._subscribers:
                    self._send_subscribe(attempt, channel)

            logger.info("Listening on %s (activity timeout %.0f s)", self._where(), timeout)
            self._set_state(LIVE)
        except Exception:
            logger.exception("Handling the handshake from %s failed", self._where())

    def _on_error(self, attempt: _Attempt, data: Any) -> None:
        try:
            self._on_inbound(attempt)
            code, message = _error_fields(data)

            if code is None:
                # A null code is the server's way of refusing one subscription
                # (bad signature) or one client event; the connection stays.
                logger.error("The Pusher server at %s reported an error: %s", self._where(), message)
                return

            attempt.error_code = code
            logger.warning("The Pusher server at %s sent error %d: %s", self._where(), code, message)

            # 4000-4099 end the connection for good; 4100-4299 ask for a
            # reconnect, which the supervisor does with back-off once the
            # socket is closed.
            if 4000 <= code < 4300:
                self._close_socket(attempt)
        except Exception:
            logger.exception("Handling an error frame from %s failed", self._where())

    def _on_channel_event(self, attempt: _Attempt, event: str, data: Any, channel: str) -> None:
        try:
            self._on_inbound(attempt)
            if attempt is not self._attempt:
                return

            if event == "pusher_internal:subscription_succeeded":
                self._on_subscribed(channel)
            elif event == "pusher:subscription_error":
                self._on_subscription_error(channel, data)
            elif event.startswith(("pusher:", "pusher_internal:")):
                logger.debug("Ignored %s on %s", event, channel)
            else:
                self._dispatch(event, data, channel)
        except Exception:
            logger.exception("Handling %r on %s failed", event, channel)

    def _on_subscribed(self, channel: str) -> None:
        with self._lock:
            self._confirmed.add(channel)
            self._rejected.discard(channel)
            subscribers = list(self._subscribers.get(channel, ()))
            replay = self._replay.pop(channel, [])

        for subscriber in subscribers:
            self._call(subscriber.hub_status, LIVE)

        for subscriber in replay:
            if any(s is subscriber for s in subscribers):
                self._call(subscriber.hub_reconnected)

    def _on_subscription_error(self, channel: str, data: Any) -> None:
        logger.error("The Pusher server rejected the subscription to %s: %s", channel, data)
        with self._lock:
            self._rejected.add(channel)
            subscribers = list(self._subscribers.get(channel, ()))

        for subscriber in subscribers:
            self._call(subscriber.hub_status, ERROR)

    def _dispatch(self, action: str, data: Any, channel: str) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(channel, ()))
            self.stats.events_received += 1

        if not subscribers:
            return

        try:
            notification = Notification.from_event(channel, action, data)
        except ValueError as error:
            self.stats.undecodable_events += 1
            logger.warning("Skipped event %r on %s: %s", action, channel, error)
            return

        for subscriber in subscribers:
            self._call(subscriber.hub_notification, notification)

    # -- helpers -----------------------------------------------------------

    def _send_subscribe(self, attempt: _Attempt, channel: str) -> None:
        # Signed over this connection's socket id, as every reconnect gets a new one.
        # NOTE: presence channels need channel_data and are not supported here.
        auth = None
        if channel.startswith("private-"):
            auth = channel_auth(self.endpoint.key, self.endpoint.secret, attempt.socket_id, channel)

        attempt.subscribed.add(channel)
        attempt.client.subscribe(channel, auth=auth)

    def _status_for(self, channel: str) -> str:
        if self._stopping.is_set():
            return OFFLINE
        if self._state != LIVE:
            return self._state
        if channel in self._rejected:
            return ERROR
        return LIVE if channel in self._confirmed else CONNECTING

    def _set_state(self, new_state: str) -> None:
        with self._lock:
            if new_state == self._state:
                return
            self._state = new_state
            updates = [
                (subscriber, self._status_for(channel))
                for channel, subscribers in self._subscribers.items()
                for subscriber in subscribers
            ]

        for subscriber, status in updates:
            self._call(subscriber.hub_status, status)

    def _call(self, method: Callable[..., None], *args: Any) -> None:
        try:
            method(*args)
        except Exception:
            logger.exception("A listener failed to take %s", getattr(method, "__name__", method))

    def _where(self) -> str:
        return f"{self.endpoint.ws_host}:{self.endpoint.port}"


def _activity_timeout(data: Any) -> float:
    try:
        parsed = json.loads(data) if isinstance(data, str) else data
        value = float(parsed.get("activity_timeout") or DEFAULT_ACTIVITY_TIMEOUT)
    except (TypeError, ValueError, AttributeError):
        return DEFAULT_ACTIVITY_TIMEOUT

    return value if value > 0 else DEFAULT_ACTIVITY_TIMEOUT


def _error_fields(data: Any) -> tuple[int | None, str]:
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None, data

    if not isinstance(data, dict):
        return None, repr(data)

    try:
        code = int(data["code"]) if data.get("code") is not None else None
    except (TypeError, ValueError):
        code = None

    return code, str(data.get("message", ""))


_hubs: dict[Endpoint, ListenerHub] = {}

_hubs_lock = threading.Lock()


def get_hub(settings: PusherSettings | None = None) -> ListenerHub:
    """Return the hub of this process for ``settings`` (or the process default), creating it once."""
    endpoint = resolve_endpoint(settings or get_settings())
    with _hubs_lock:
        hub = _hubs.get(endpoint)
        if hub is None or hub._stopping.is_set():
            hub = _hubs[endpoint] = ListenerHub(endpoint)
        return hub


def stop_hubs() -> None:
    """Stop every hub of this process; the next get_hub() starts afresh."""
    with _hubs_lock:
        hubs = list(_hubs.values())
        _hubs.clear()

    for hub in hubs:
        hub.stop()
