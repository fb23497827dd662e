"""Rules of the Pusher websocket protocol (version 7, and the 5-6 that old clients announce).

Nothing here does I/O: functions parse frames, check subscriptions, sign-ins
and client events, and build the frames the server sends. The Tornado
handler in ``connections.py`` and the registry in ``channels.py`` call them.

Server-to-client ``data`` is a JSON-encoded string for every event except
``pusher:error``, whose data is an object: pusher-js reads either form, but
pysher 1.0.8 runs ``json.loads`` on the handshake data and reads error data
as an object.
"""

from __future__ import annotations

import json
import random
import re
import struct
from dataclasses import dataclass
from typing import Any

from panel_pusher import signatures
from panel_pusher.server.errors import InvalidMessage, SubscriptionError, Unauthorized
from panel_pusher.server.errors import UnsupportedProtocol
from panel_pusher.validation import MAX_DATA_BYTES, SERVER_TO_USER_PREFIX
from panel_pusher.validation import validate_channel_name

# Protocol versions accepted from the ``protocol`` query parameter; pysher 1.0.8 sends 6.
SUPPORTED_PROTOCOLS = range(5, 8)

# A missing ``protocol`` parameter is read as this version.
DEFAULT_PROTOCOL = 7

# Pusher's presence limits: members per channel, user id length and user object size.
MAX_PRESENCE_MEMBERS = 100

MAX_USER_ID_LENGTH = 128

MAX_USER_DATA_BYTES = 1024

# Pusher's client event rate limit, per connection.
CLIENT_EVENTS_PER_SECOND = 10

SOCKET_ID_PATTERN = re.compile(r"^\d+\.\d+$")

# Socket ids are two random integers below this bound (soketi's range), which
# the ``pusher`` SDK accepts because they match ``^\d+\.\d+$``.
_SOCKET_ID_PART_BOUND = 10**10

_JSON = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True)
class ChannelType:
    """Authorization and delivery rules selected by a channel name's prefix."""

    prefix: str

    # Subscriptions need a signature over ``socket_id:channel[:channel_data]``.
    private: bool = False

    presence: bool = False

    # End-to-end encrypted: relayed untouched, but no client events.
    encrypted: bool = False

    # The last HTTP event is kept and replayed to each new subscriber.
    cache: bool = False

    # ``#server-to-user-<id>``: only the socket signed in as ``<id>`` may subscribe.
    user: bool = False


# Longest prefix first, so that ``private-encrypted-cache-x`` is not read as ``private-x``.
CHANNEL_TYPES = (
    ChannelType(SERVER_TO_USER_PREFIX, user=True),
    ChannelType("private-encrypted-cache-", private=True, encrypted=True, cache=True),
    ChannelType("private-encrypted-", private=True, encrypted=True),
    ChannelType("presence-cache-", private=True, presence=True, cache=True),
    ChannelType("private-cache-", private=True, cache=True),
    ChannelType("presence-", private=True, presence=True),
    ChannelType("private-", private=True),
    ChannelType("cache-", cache=True),
)

PUBLIC = ChannelType("")


def channel_type(name: str) -> ChannelType:
    """Return the type of channel ``name`` from its prefix."""
    for candidate in CHANNEL_TYPES:
        if name.startswith(candidate.prefix):
            return candidate

    return PUBLIC


@dataclass(frozen=True)
class Member:
    """A presence channel member, as the subscribing socket's channel_data names it."""

    user_id: str

    user_info: Any = None


def new_socket_id() -> str:
    """Return a random socket id of the form ``digits.digits``."""
    first = random.randrange(_SOCKET_ID_PART_BOUND)
    second = random.randrange(_SOCKET_ID_PART_BOUND)
    return f"{first}.{second}"


def check_protocol_version(value: str | None) -> int:
    """Return the protocol version from the query parameter, or raise ``UnsupportedProtocol``."""
    if value is None or value == "":
        return DEFAULT_PROTOCOL

    if not value.isdigit() or int(value) not in SUPPORTED_PROTOCOLS:
        raise UnsupportedProtocol(f"unsupported protocol version {value[:20]!r}; use 7")

    return int(value)


def parse_frame(text: str) -> tuple[str, str | None, Any]:
    """Parse one client frame into ``(event, channel, data)``, or raise ``InvalidMessage``."""
    try:
        message = json.loads(text)
    except ValueError:
        raise InvalidMessage("invalid JSON") from None

    if not isinstance(message, dict):
        raise InvalidMessage("a frame must be a JSON object")

    event = message.get("event")
    if not isinstance(event, str) or not event:
        raise InvalidMessage("missing or invalid 'event'")

    channel = message.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise InvalidMessage("'channel' must be a string")

    return event, channel, message.get("data")


def decode_event_data(data: Any) -> dict[str, Any]:
    """Return the data of a ``pusher:*`` client event as an object.

    Both official clients send an object; the old protocol text showed a
    JSON string, and pysher sends an empty string with its pings.
    """
    if data is None or data == "":
        return {}

    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            raise InvalidMessage("'data' is not valid JSON") from None

    if not isinstance(data, dict):
        raise InvalidMessage("'data' must be an object")

    return data


def subscription_channel(data: dict[str, Any]) -> str:
    """Return the valid channel name of a subscribe or unsubscribe request."""
    channel = data.get("channel")
    try:
        return validate_channel_name(channel)
    except ValueError as error:
        raise InvalidMessage(str(error)) from None


def authorize_subscription(
    key: str,
    secret: str,
    socket_id: str,
    channel: str,
    data: dict[str, Any],
    signed_in: Member | None,
) -> Member | None:
    """Check a ``pusher:subscribe`` request and return the presence member, if any.

    ``signed_in`` is the user this socket signed in as. pusher-js 8 may
    subscribe a signed-in socket to a presence channel without channel_data;
    the member is then the signed-in user. Raise ``SubscriptionError`` when
    the signature, the channel_data or the signed-in user does not allow the
    subscription.
    """
    kind = channel_type(channel)

    if kind.user:
        user_id = channel[len(SERVER_TO_USER_PREFIX):]
        if signed_in is None or signed_in.user_id != user_id:
            raise SubscriptionError(channel, "only the socket signed in as that user may subscribe")
        return None

    if not kind.private:
        return None

    channel_data = data.get("channel_data") if kind.presence else None
    if kind.presence and channel_data is None and signed_in is not None:
        _check_auth(key, secret, channel, data.get("auth"), socket_id, None)
        return signed_in

    if kind.presence and not isinstance(channel_data, str):
        raise SubscriptionError(
            channel, "presence subscriptions need channel_data as a string, or a signed-in socket"
        )

    _check_auth(key, secret, channel, data.get("auth"), socket_id, channel_data)

    if channel_data is None:
        return None

    return parse_channel_data(channel, channel_data)


def _check_auth(
    key: str, secret: str, channel: str, auth: Any, socket_id: str, channel_data: str | None
) -> None:
    if not isinstance(auth, str) or not auth:
        raise SubscriptionError(channel, "missing auth signature")

    given_key, _, given_signature = auth.partition(":")
    if given_key != key:
        raise SubscriptionError(channel, "invalid key in auth signature")

    # The exact received channel_data string is signed; it is never re-serialised.
    signed = signatures.subscription_string(socket_id, channel, channel_data)
    if not signatures.signatures_match(signatures.sign(secret, signed), given_signature):
        raise SubscriptionError(
            channel, f"invalid signature: expected the HMAC SHA256 hex digest of {signed!r}"
        )


def parse_channel_data(channel: str, channel_data: str) -> Member:
    """Return the member that a presence subscription's channel_data describes."""
    if len(channel_data.encode("utf-8")) > MAX_USER_DATA_BYTES:
        raise SubscriptionError(
            channel, f"channel_data is larger than {MAX_USER_DATA_BYTES} bytes", status=400
        )

    try:
        parsed = json.loads(channel_data)
    except ValueError:
        raise SubscriptionError(channel, "channel_data is not valid JSON", status=400) from None

    if not isinstance(parsed, dict):
        raise SubscriptionError(channel, "channel_data must be a JSON object", status=400)

    user_id = parsed.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)) or user_id == "":
        raise SubscriptionError(channel, "channel_data needs a user_id string or number", status=400)

    user_id = str(user_id)
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise SubscriptionError(
            channel, f"user_id is longer than {MAX_USER_ID_LENGTH} characters", status=400
        )

    return Member(user_id, parsed.get("user_info"))


def check_signin(key: str, secret: str, socket_id: str, data: dict[str, Any]) -> tuple[Member, str]:
    """Check a ``pusher:signin`` request and return the user and the exact user_data string.

    Raise ``Unauthorized`` when the signature or the user data is invalid.
    """
    auth = data.get("auth")
    user_data = data.get("user_data")
    if not isinstance(auth, str) or not isinstance(user_data, str):
        raise Unauthorized("sign-in needs auth and user_data strings")

    given_key, _, given_signature = auth.partition(":")
    expected = signatures.user_auth(key, secret, socket_id, user_data).partition(":")[2]
    if given_key != key or not signatures.signatures_match(expected, given_signature):
        raise Unauthorized("invalid sign-in signature")

    try:
        parsed = json.loads(user_data)
    except ValueError:
        raise Unauthorized("user_data is not valid JSON") from None

    user_id = parsed.get("id") if isinstance(parsed, dict) else None
    if not isinstance(user_id, str) or not user_id:
        raise Unauthorized("user_data needs a non-empty string id")

    return Member(user_id, parsed.get("user_info")), user_data


def check_client_event(event: str, channel: str | None, subscribed: bool, enabled: bool) -> str:
    """Check that a ``client-*`` event may be relayed and return its channel."""
    if not enabled:
        raise InvalidMessage("client events are disabled on this server")

    if channel is None:
        raise InvalidMessage(f"client event {event[:50]!r} needs a channel")

    kind = channel_type(channel)
    if not kind.private or kind.encrypted:
        raise InvalidMessage("client events are allowed on private and presence channels only")

    if not subscribed:
        raise InvalidMessage(f"not subscribed to {channel[:200]!r}")

    return channel


def check_client_event_size(payload: str) -> None:
    """Reject a client event whose data is larger than Pusher's 10 KB limit."""
    if len(payload.encode("utf-8")) > MAX_DATA_BYTES:
        raise InvalidMessage(f"client event data is larger than {MAX_DATA_BYTES} bytes")


class RateLimiter:
    """Token bucket allowing ``rate`` events per second, with bursts of ``rate``."""

    __slots__ = ("_rate", "_tokens", "_updated")

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._tokens = rate
        self._updated = 0.0

    def allow(self, now: float) -> bool:
        """Take one token at time ``now`` (seconds), or return False when none is left."""
        elapsed = now - self._updated
        self._updated = now
        self._tokens = min(self._rate, self._tokens + elapsed * self._rate)

        if self._tokens < 1.0:
            return False

        self._tokens -= 1.0
        return True


def encode(frame: dict[str, Any]) -> str:
    """Encode a server frame as compact JSON."""
    return _JSON.encode(frame)


def channel_event(event: str, channel: str, data: Any, user_id: str | None = None) -> str:
    """Encode an event for a channel's subscribers, with ``data`` unchanged."""
    frame: dict[str, Any] = {"event": event, "channel": channel, "data": data}
    if user_id is not None:
        frame["user_id"] = user_id

    return _JSON.encode(frame)


def connection_established(socket_id: str, activity_timeout: int) -> str:
    """Encode the handshake frame, whose data must be a JSON string for pysher."""
    data = _JSON.encode({"socket_id": socket_id, "activity_timeout": activity_timeout})
    return _JSON.encode({"event": "pusher:connection_established", "data": data})


def subscription_succeeded(channel: str, members: dict[str, Any] | None = None) -> str:
    """Encode ``pusher_internal:subscription_succeeded``, with the member list on presence channels."""
    if members is None:
        data = "{}"
    else:
        presence = {"ids": list(members), "hash": members, "count": len(members)}
        data = _JSON.encode({"presence": presence})

    return channel_event("pusher_internal:subscription_succeeded", channel, data)


def member_added(channel: str, member: Member) -> str:
    """Encode ``pusher_internal:member_added`` for the other members."""
    data = _JSON.encode({"user_id": member.user_id, "user_info": member.user_info})
    return channel_event("pusher_internal:member_added", channel, data)


def member_removed(channel: str, user_id: str) -> str:
    """Encode ``pusher_internal:member_removed`` for the remaining members."""
    return channel_event("pusher_internal:member_removed", channel, _JSON.encode({"user_id": user_id}))


def signin_success(user_data: str) -> str:
    """Encode ``pusher:signin_success`` carrying the exact user_data string."""
    data = _JSON.encode({"user_data": user_data})
    return _JSON.encode({"event": "pusher:signin_success", "data": data})


def cache_miss(channel: str) -> str:
    """Encode ``pusher:cache_miss`` (no data) for a cache channel with nothing cached."""
    return _JSON.encode({"event": "pusher:cache_miss", "channel": channel})


PING = _JSON.encode({"event": "pusher:ping", "data": {}})

PONG = _JSON.encode({"event": "pusher:pong", "data": {}})


def websocket_text_frame(payload: bytes) -> bytes:
    """Wrap ``payload`` in one unmasked, uncompressed websocket text frame (RFC 6455 5.2).

    Servers never mask, so the same bytes can be written to every subscriber.
    """
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)

    return header + payload
