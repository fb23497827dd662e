"""Pusher's limits on names and sizes, and validators that enforce them.

The limits are those of Pusher Channels and of the ``pusher`` SDK 3.3.4.
Channel names have at most 200 characters from ``[A-Za-z0-9_\\-=@,.;]`` and
event names at most 200 characters. Event data is at most 10 KB, a trigger
names at most 100 channels, and a batch holds at most 10 events. Each
validator returns the value it checked, or raises ``ValueError`` naming the
value and the rule.
"""

from __future__ import annotations

import re

MAX_CHANNEL_NAME_LENGTH = 200

MAX_EVENT_NAME_LENGTH = 200

MAX_DATA_BYTES = 10 * 1024

MAX_CHANNELS_PER_TRIGGER = 100

MAX_BATCH_EVENTS = 10

CHANNEL_NAME_CHARACTERS = "A-Za-z0-9_\\-=@,.;"

CHANNEL_NAME_PATTERN = re.compile(f"^[{CHANNEL_NAME_CHARACTERS}]+$")

# The one channel family whose names contain '#': per-user channels for
# signed-in sockets, fed by the SDK's ``send_to_user``.
SERVER_TO_USER_PREFIX = "#server-to-user-"


def validate_channel_name(name: object) -> str:
    """Return ``name`` if it is a valid Pusher channel name, else raise ``ValueError``."""
    if not isinstance(name, str):
        raise ValueError(f"channel name must be a string, not {type(name).__name__}")

    if not name:
        raise ValueError("channel name must not be empty")

    if len(name) > MAX_CHANNEL_NAME_LENGTH:
        raise ValueError(
            f"channel name {name[:40]!r}... is {len(name)} characters long; "
            f"the maximum is {MAX_CHANNEL_NAME_LENGTH}"
        )

    body = name[len(SERVER_TO_USER_PREFIX):] if name.startswith(SERVER_TO_USER_PREFIX) else name
    if not CHANNEL_NAME_PATTERN.match(body):
        raise ValueError(
            f"channel name {name!r} contains characters outside [{CHANNEL_NAME_CHARACTERS}]"
        )

    return name


def validate_event_name(name: object) -> str:
    """Return ``name`` if it is a valid Pusher event name, else raise ``ValueError``."""
    if not isinstance(name, str):
        raise ValueError(f"event name must be a string, not {type(name).__name__}")

    if not name:
        raise ValueError("event name must not be empty")

    if len(name) > MAX_EVENT_NAME_LENGTH:
        raise ValueError(
            f"event name {name[:40]!r}... is {len(name)} characters long; "
            f"the maximum is {MAX_EVENT_NAME_LENGTH}"
        )

    return name


def validate_data_size(data: str) -> str:
    """Return ``data`` if its UTF-8 encoding fits Pusher's 10 KB limit, else raise ``ValueError``."""
    size = len(data.encode("utf-8"))
    if size > MAX_DATA_BYTES:
        raise ValueError(
            f"event data is {size} bytes; Pusher accepts at most {MAX_DATA_BYTES} bytes"
        )

    return data


# Event name prefixes that Pusher keeps for its own events and for client events.
RESERVED_EVENT_PREFIXES = ("pusher:", "pusher_internal:", "client-")


def validate_action_name(name: object) -> str:
    """Return ``name`` if it can be a notification action, else raise ``ValueError``.

    An action is sent as a Pusher event name, so it follows those rules and
    must not start with a prefix that Pusher keeps for itself.
    """
    validate_event_name(name)
    assert isinstance(name, str)

    if name.startswith(RESERVED_EVENT_PREFIXES):
        raise ValueError(
            f"action {name!r} starts with a reserved prefix ({', '.join(RESERVED_EVENT_PREFIXES)}); "
            "choose a plain name such as 'refresh'"
        )

    return name
