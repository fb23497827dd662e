"""The app credentials and server the pusher-js tests share."""

from __future__ import annotations

import base64
from typing import Any

import pusher

APP_ID = "4242"
APP_KEY = "js-conformance-key"
APP_SECRET = "js-conformance-secret"

# Fixed 32-byte master key for private-encrypted channels (test data only).
ENCRYPTION_MASTER_KEY_BASE64 = base64.b64encode(bytes(range(32))).decode("ascii")


def start_test_server(port: int = 0, **options: Any) -> Any:
    """Start the embedded server with the test app on 127.0.0.1 and return its handle.

    Keyword options go to ``start_server`` unchanged.
    """
    from panel_pusher.server import start_server

    return start_server(host="127.0.0.1", port=port, app_id=APP_ID, key=APP_KEY, secret=APP_SECRET, **options)


def make_sdk(port: int) -> pusher.Pusher:
    """Return a ``pusher`` SDK client for the test app on 127.0.0.1:port."""
    return pusher.Pusher(
        app_id=APP_ID,
        key=APP_KEY,
        secret=APP_SECRET,
        host="127.0.0.1",
        port=port,
        ssl=False,
        timeout=10,
        encryption_master_key_base64=ENCRYPTION_MASTER_KEY_BASE64,
    )
