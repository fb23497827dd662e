"""Thin Tornado websocket handler over the rules in ``protocol.py``.

All writes to one socket go through ``send_frame``, which appends to the
socket's ``IOStream`` at once, so frames leave in the order the server
produced them: subscription_succeeded before any event on that channel.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from tornado.iostream import SSLIOStream, StreamBufferFullError, StreamClosedError
from tornado.websocket import WebSocketHandler

from panel_pusher.server import codes, protocol
from panel_pusher.server.errors import ClientEventRejected, InvalidMessage, PusherProtocolError
from panel_pusher.server.errors import AppNotFound, PongNotReceived, SubscriptionError

if TYPE_CHECKING:
    from panel_pusher.server.app import PusherServer

logger = logging.getLogger(__name__)

# Errors logged at WARNING per connection; later ones go to DEBUG, so that
# one misbehaving client cannot flood the log.
MAX_LOGGED_ERRORS = 5

# A client that lets this many bytes queue up unread is disconnected.
MAX_WRITE_BUFFER_BYTES = 4 * 1024 * 1024


class PusherConnection(WebSocketHandler):
    """One client websocket on ``/app/{key}``."""

    def initialize(self, server: PusherServer) -> None:
        self.server = server
        self.registry = server.registry

        # Set in open(): a connection that never opened has no socket id.
        self.socket_id = ""

        # Names of subscribed channels, kept by the registry.
        self.channels: set[str] = set()

        # The user after a successful pusher:signin.
        self.user: protocol.Member | None = None

        # time.monotonic() of the last frame received, and of the server's unanswered ping.
        self.last_seen = 0.0
        self.ping_sent: float | None = None

        self._direct_send = False
        self._client_events: protocol.RateLimiter | None = None
        self._errors_logged = 0
        self._stream: Any = None

    def check_origin(self, origin: str) -> bool:
        # Pages on any origin may connect, as with Pusher: channel signatures,
        # not the Origin header, decide what a socket may read.
        return True

    def get_compression_options(self) -> None:
        # permessage-deflate would compress each frame once per subscriber.
        return None

    def open(self, key: str) -> None:
        self.last_seen = time.monotonic()
        self._stream = self.ws_connection.stream  # type: ignore[union-attr]
        self._stream.max_write_buffer_size = MAX_WRITE_BUFFER_BYTES

        # Writing to the raw socket would bypass TLS, so TLS streams always use write().
        self._direct_send = not isinstance(self._stream, SSLIOStream)

        # Without TCP_NODELAY, Nagle's algorithm holds a frame back until the
        # client acknowledges the previous one, which delayed ACKs can stretch to 40 ms.
        self.set_nodelay(True)

        if key != self.server.config.key:
            self.report(AppNotFound(f"app key {key[:50]!r} not found"))
            return

        try:
            protocol.check_protocol_version(self.get_query_argument("protocol", None))
        except PusherProtocolError as error:
            self.report(error)
            return

        self.socket_id = protocol.new_socket_id()
        while self.socket_id in self.registry.connections:
            self.socket_id = protocol.new_socket_id()

        self.registry.add_connection(self)
        self.send(protocol.connection_established(self.socket_id, self.server.config.activity_timeout))
        logger.debug("socket %s connected from %s", self.socket_id, self.request.remote_ip)

    def on_message(self, message: str | bytes) -> None:
        self.registry.stats.messages_in += 1
        self.last_seen = time.monotonic()
        self.ping_sent = None

        if not self.socket_id:
            return

        try:
            if isinstance(message, bytes):
                raise InvalidMessage("binary frames are not supported")
            self.dispatch(*protocol.parse_frame(message))
        except PusherProtocolError as error:
            self.report(error)
        except Exception:
            logger.exception("internal error on socket %s", self.socket_id)
            self.close(codes.WS_1011_INTERNAL_ERROR, "internal error")

    def on_ping(self, data: bytes) -> None:
        self.last_seen = time.monotonic()

    def on_pong(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        self.ping_sent = None

    def on_close(self) -> None:
        if not self.socket_id:
            return

        self.registry.remove_connection(self, self.user.user_id if self.user else None)
        logger.debug(
            "socket %s closed (code %s)", self.socket_id, self.close_code
        )

    # Protocol events

    def dispatch(self, event: str, channel: str | None, data: Any) -> None:
        """Handle one parsed client frame."""
        if event.startswith("client-"):
            self.client_event(event, channel, data)
        elif event == "pusher:ping":
            self.send(protocol.PONG)
        elif event == "pusher:pong":
            pass
        elif event == "pusher:subscribe":
            self.subscribe(protocol.decode_event_data(data))
        elif event == "pusher:unsubscribe":
            name = protocol.subscription_channel(protocol.decode_event_data(data))
            self.registry.unsubscribe(self, name)
        elif event == "pusher:signin":
            self.sign_in(protocol.decode_event_data(data))
        else:
            raise InvalidMessage(f"unsupported event {event[:50]!r}")

    def subscribe(self, data: dict[str, Any]) -> None:
        """Check a subscription request and subscribe this socket."""
        name = protocol.subscription_channel(data)
        config = self.server.config
        member = protocol.authorize_subscription(
            config.key, config.secret, self.socket_id, name, data, self.user
        )
        self.registry.subscribe(self, name, member)

    def sign_in(self, data: dict[str, Any]) -> None:
        """Check ``pusher:signin`` and record the user on this socket."""
        config = self.server.config
        user, user_data = protocol.check_signin(config.key, config.secret, self.socket_id, data)

        if self.user is not None and self.user.user_id != user.user_id:
            self.registry.sign_out(self, self.user.user_id)

        self.user = user
        self.registry.sign_in(self, user.user_id)
        self.send(protocol.signin_success(user_data))

    def client_event(self, event: str, channel: str | None, data: Any) -> None:
        """Relay a ``client-*`` event to the other subscribers of its channel."""
        name = protocol.check_client_event(
            event,
            channel,
            channel is not None and self.registry.is_subscribed(self, channel),
            self.server.config.enable_client_events,
        )

        if self._client_events is None:
            self._client_events = protocol.RateLimiter(self.server.config.client_event_rate)
        if not self._client_events.allow(time.monotonic()):
            raise ClientEventRejected(
                f"more than {self.server.config.client_event_rate:g} client events per second"
            )

        protocol.check_client_event_size(data if isinstance(data, str) else protocol.encode(data))

        member = self.registry.member_of(self, name)
        user_id = member.user_id if member is not None else None
        self.registry.relay_client_event(self, name, event, data, user_id)

    # Liveness

    def check_activity(self, now: float) -> None:
        """Ping a socket that has been silent too long, and close one that ignored the ping."""
        config = self.server.config
        if self.ping_sent is not None:
            if now - self.ping_sent > config.pong_timeout:
                self.report(PongNotReceived("no pong within the pong timeout"))
            return

        if now - self.last_seen > config.activity_timeout + config.activity_slack:
            self.ping_sent = now
            self.send(protocol.PING)

    # Output

    def send(self, text: str) -> None:
        """Send one encoded frame to this socket."""
        self.registry.stats.messages_out += 1
        self.send_frame(protocol.websocket_text_frame(text.encode("utf-8")))

    def send_frame(self, frame: bytes) -> None:
        """Write ready frame bytes to this socket.

        When nothing is queued on the stream, the bytes go straight to the
        socket: ``IOStream.write`` would create and resolve a Future per call,
        which costs more than the send itself during fan-out. Anything the
        kernel does not take, and every frame while a backlog exists, goes
        through the stream, so frames keep their order.
        """
        stream = self._stream
        if self._direct_send and not stream.writing() and not stream.closed():
            try:
                sent = stream.socket.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                # Reset or broken pipe: the stream's own write reports and closes it.
                sent = 0

            if sent == len(frame):
                return
            frame = frame[sent:]

        try:
            stream.write(frame)
        except StreamClosedError:
            pass
        except StreamBufferFullError:
            logger.warning(
                "socket %s is not reading; %d bytes queued, disconnecting it",
                self.socket_id,
                MAX_WRITE_BUFFER_BYTES,
            )
            self._stream.close()

    def abort(self) -> None:
        """Drop the TCP connection at once, without the closing handshake."""
        self._stream.close()

    def report(self, error: PusherProtocolError) -> None:
        """Log ``error``, send it as ``pusher:error``, and close the socket when the error requires it."""
        channel = getattr(error, "channel", None)
        self._log_error(error, channel)

        self.send(protocol.encode(error.error_frame()))
        if isinstance(error, SubscriptionError):
            self.send(protocol.encode(error.subscription_error_frame()))

        if error.closes:
            self.close(error.code, error.message[:100])

    def _log_error(self, error: PusherProtocolError, channel: str | None) -> None:
        self._errors_logged += 1
        if self._errors_logged > MAX_LOGGED_ERRORS:
            level = logging.DEBUG
        else:
            level = logging.WARNING

        logger.log(
            level,
            "socket %s channel %s: %s (code %s)",
            self.socket_id or "-",
            channel or "-",
            error.message,
            error.code,
        )
        if self._errors_logged == MAX_LOGGED_ERRORS:
            logger.warning("socket %s: further errors are logged at DEBUG", self.socket_id or "-")
