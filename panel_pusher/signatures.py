"""HMAC-SHA256 signing and checking for the Pusher protocol.

One module signs and checks everything that Pusher signs: channel
subscriptions, user sign-in, HTTP API requests and webhooks. Checks compare
with ``hmac.compare_digest`` so that a wrong signature takes as long to
reject as a nearly right one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

AUTH_VERSION = "1.0"


def sign(secret: str, message: str | bytes) -> str:
    """Return the lowercase hex HMAC-SHA256 of ``message`` under ``secret``."""
    if isinstance(message, str):
        message = message.encode("utf-8")

    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signatures_match(expected: str, given: str) -> bool:
    """Compare two signatures in constant time."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def subscription_string(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """Return the string a private or presence subscription signs."""
    if channel_data is None:
        return f"{socket_id}:{channel}"

    return f"{socket_id}:{channel}:{channel_data}"


def channel_auth(
    key: str, secret: str, socket_id: str, channel: str, channel_data: str | None = None
) -> str:
    """Return the ``auth`` value (``key:signature``) for a channel subscription."""
    signature = sign(secret, subscription_string(socket_id, channel, channel_data))
    return f"{key}:{signature}"


def user_auth(key: str, secret: str, socket_id: str, user_data: str) -> str:
    """Return the ``auth`` value for ``pusher:signin`` with the exact ``user_data`` string."""
    signature = sign(secret, f"{socket_id}::user::{user_data}")
    return f"{key}:{signature}"


def body_md5(body: bytes) -> str:
    """Return the lowercase hex MD5 of a request body, as the HTTP API signs it."""
    return hashlib.md5(body).hexdigest()


def request_string(method: str, path: str, params: Mapping[str, str]) -> str:
    """Return the string an HTTP API request signs.

    ``params`` are the URL-decoded query parameters; ``auth_signature`` is left
    out, keys are lowercased and sorted, and values go in unescaped.
    """
    pairs = sorted(
        (name.lower(), value) for name, value in params.items() if name != "auth_signature"
    )
    query = "&".join(f"{name}={value}" for name, value in pairs)
    return f"{method.upper()}\n{path}\n{query}"


def webhook_signature(secret: str, body: bytes) -> str:
    """Return the ``X-Pusher-Signature`` header value for a webhook body."""
    return sign(secret, body)
