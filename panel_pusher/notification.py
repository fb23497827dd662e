"""The event body that notify sends and listeners decode.

A body carries identity, not data: entity, id, change time, the notifier's
user name, a unique message id, and optionally an opaque token of the Panel
session that sent it (so that session can skip its own event)::

    {"entity": "ChatRoom", "id": "42", "changed_at": "2026-12-04T20:00:00.123456Z",
     "user": "alice", "message_id": "9f1c...", "origin": null}

The event name is the action.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Notification:
    """One change of one object, as callbacks receive it."""

    entity: str

    object_id: str

    action: str

    # Time of the change, timezone-aware, in UTC.
    changed_at: dt.datetime

    # User name of the notifier, or None.
    user: str | None

    # Unique id of this message; equal in every process that receives it.
    message_id: str

    channel: str

    # Opaque token of the Panel session that sent it, for sender exclusion.
    origin: str | None = field(default=None, repr=False)

    # True for the synthetic notification that replays actions after a reconnect.
    reconnect: bool = False

    @classmethod
    def create(
        cls,
        entity: str,
        object_id: str,
        action: str,
        channel: str,
        *,
        user: str | None = None,
        origin: str | None = None,
        reconnect: bool = False,
    ) -> Notification:
        """Return a new notification stamped with the current UTC time and a fresh message id."""
        return cls(
            entity=entity,
            object_id=object_id,
            action=action,
            changed_at=dt.datetime.now(dt.timezone.utc),
            user=user,
            message_id=uuid.uuid4().hex,
            channel=channel,
            origin=origin,
            reconnect=reconnect,
        )

    def to_json(self) -> str:
        """Return the event body as compact JSON."""
        body = {
            "entity": self.entity,
            "id": self.object_id,
            "changed_at": self.changed_at.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
            "user": self.user,
            "message_id": self.message_id,
            "origin": self.origin,
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_event(cls, channel: str, action: str, data: Any) -> Notification:
        """Decode an event's ``data`` as pysher passes it (a JSON string); raise ``ValueError`` if invalid."""
        if isinstance(data, (bytes, bytearray)):
            data = data.decode("utf-8", errors="replace")

        if isinstance(data, str):
            try:
                body = json.loads(data)
            except ValueError:
                raise ValueError("data is not JSON") from None
        else:
            body = data

        if not isinstance(body, dict):
            raise ValueError(f"data is a JSON {type(body).__name__}, not an object")

        entity = _required_text(body, "entity")
        object_id = _required_text(body, "id")
        message_id = _required_text(body, "message_id")
        user = _optional_text(body, "user")
        origin = _optional_text(body, "origin")
        changed_at = _parse_time(body.get("changed_at"))

        return cls(
            entity=entity,
            object_id=object_id,
            action=action,
            changed_at=changed_at,
            user=user,
            message_id=message_id,
            channel=channel,
            origin=origin,
        )


def _required_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"field {name!r} must be a non-empty string, not {value!r}")

    return value


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {name!r} must be a string or null, not {value!r}")

    return value


def _parse_time(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError(f"field 'changed_at' must be an ISO 8601 string, not {value!r}")

    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"field 'changed_at' is not ISO 8601: {value!r}") from None

    if parsed.tzinfo is None:
        raise ValueError(f"field 'changed_at' has no time zone: {value!r}")

    return parsed.astimezone(dt.timezone.utc)
