"""Errors of the websocket protocol, one class per Pusher error code.

::

    PusherProtocolError            code, message, whether the socket closes
    ├── AppNotFound                4001, closes
    ├── UnsupportedProtocol        4007, closes
    ├── Unauthorized               4009, closes (sign-in failed, user terminated)
    ├── ServerShuttingDown         4100, closes (clients back off, then reconnect)
    ├── PongNotReceived            4201, closes
    ├── ClientEventRejected        4301, stays open (rate limit)
    └── InvalidMessage             code null, stays open
        └── SubscriptionError      code null, also a channel-scoped subscription_error

Errors that keep the socket open carry a null code on purpose: pysher 1.0.8
disconnects for good on any 4000-4099 ``pusher:error``, so a bad subscription
or client event must never use one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from panel_pusher.server import codes


class PusherProtocolError(Exception):
    """A protocol error to report to one client as a ``pusher:error`` event."""

    code: ClassVar[int | None] = None

    # Whether the server closes the socket, with ``code`` as the close code, after the event.
    closes: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def error_frame(self) -> dict[str, Any]:
        """Build the ``pusher:error`` frame, whose data must be an object for pysher."""
        return {"event": "pusher:error", "data": {"code": self.code, "message": self.message}}


class AppNotFound(PusherProtocolError):
    """The websocket path names an app key this server does not know."""

    code = codes.PUSHER_4001_APP_NOT_FOUND
    closes = True


class UnsupportedProtocol(PusherProtocolError):
    """The client requested a protocol version outside 5-7."""

    code = codes.PUSHER_4007_UNSUPPORTED_PROTOCOL
    closes = True


class Unauthorized(PusherProtocolError):
    """A sign-in failed its checks, or the HTTP API terminated the user's connections."""

    code = codes.PUSHER_4009_UNAUTHORIZED
    closes = True


class ServerShuttingDown(PusherProtocolError):
    """The server is stopping, so clients should back off and reconnect."""

    code = codes.PUSHER_4100_OVER_CAPACITY
    closes = True


class PongNotReceived(PusherProtocolError):
    """The client stayed silent after the server's ``pusher:ping``."""

    code = codes.PUSHER_4201_PONG_NOT_RECEIVED
    closes = True


class ClientEventRejected(PusherProtocolError):
    """The client sent client events faster than the rate limit allows."""

    code = codes.PUSHER_4301_CLIENT_EVENT_REJECTED


class InvalidMessage(PusherProtocolError):
    """A frame that breaks a protocol rule. The socket stays open."""


class SubscriptionError(InvalidMessage):
    """A subscription that failed its checks. The socket stays open."""

    def __init__(self, channel: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.channel = channel

        # HTTP-like status for pusher-js's ``pusher:subscription_error`` handlers.
        self.status = status

    def subscription_error_frame(self) -> dict[str, Any]:
        """Build the channel-scoped ``pusher:subscription_error`` frame that pusher-js reads."""
        return {
            "event": "pusher:subscription_error",
            "channel": self.channel,
            "data": {"type": "AuthError", "error": self.message, "status": self.status},
        }
