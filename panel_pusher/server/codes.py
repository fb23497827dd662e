"""Pusher error and close codes, each named once.

The ranges tell clients what to do next: 4000-4099 means do not reconnect,
4100-4199 reconnect after backing off, 4200-4299 reconnect at once, and
4300-4399 is an in-band error that closes nothing. ``pysher`` 1.0.8 never
reads close codes, so the server sends a ``pusher:error`` event with the
same code before every close it wants a client to act on.
"""

from __future__ import annotations

PUSHER_4001_APP_NOT_FOUND = 4001

PUSHER_4007_UNSUPPORTED_PROTOCOL = 4007

PUSHER_4009_UNAUTHORIZED = 4009

# Used on shutdown: pysher then reconnects after its usual interval. A 42xx
# code would leave pysher retrying with no delay while the server is down.
PUSHER_4100_OVER_CAPACITY = 4100

PUSHER_4201_PONG_NOT_RECEIVED = 4201

PUSHER_4301_CLIENT_EVENT_REJECTED = 4301

# WebSocket close code (RFC 6455) for an internal error on the server side.
WS_1011_INTERNAL_ERROR = 1011

# HTTP statuses used by the REST API, named as in ``http.HTTPStatus``.
HTTP_400_BAD_REQUEST = 400

HTTP_401_UNAUTHORIZED = 401

HTTP_404_NOT_FOUND = 404

HTTP_413_CONTENT_TOO_LARGE = 413
