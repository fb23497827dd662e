"""Channel names for objects, derived from entity name and primary key.

An object's channel is ``private-<prefix><Entity>.<id>``. The entity is the
class attribute ``pusher_entity`` (default: the class name) and the id is the
value of the attribute named by ``pusher_id`` (default: ``id``), so the same
row loaded in two processes maps to the same channel. Python identity and
param's generated ``name`` never enter it.

Characters outside Pusher's channel alphabet, and the ``.`` and ``=`` that
the name uses itself, are written as ``=XX`` per UTF-8 byte (upper-case hex),
so the mapping is reversible: ``Chat Room`` becomes ``Chat=20Room``. An id
whose encoded name would pass Pusher's 200-character limit is replaced by
``=_`` and a SHA-256 digest, which both sides compute alike but which cannot
be decoded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from .settings import PusherSettings, get_settings
from .validation import MAX_CHANNEL_NAME_LENGTH, validate_channel_name

PRIVATE_PREFIX = "private-"

# Characters written as-is inside an entity or id; '.' separates the two and
# '=' starts an escape, so both are escaped.
_PLAIN = re.compile(r"[A-Za-z0-9_\-@,;]")

_ESCAPE = re.compile(r"=([0-9A-F]{2})")

_ENCODED = re.compile(r"(?:[A-Za-z0-9_\-@,;]|=[0-9A-F]{2})*")

# Marks an id replaced by its digest because the name would be too long.
HASHED_ID_MARK = "=_"

_HASH_HEX_CHARS = 40


@dataclass(frozen=True)
class ObjectRef:
    """The entity and id a channel name stands for; ``object_id`` is None for a hashed id."""

    entity: str

    object_id: str | None

    channel: str


def encode_component(text: str) -> str:
    """Encode an entity name or id so that it is valid inside a channel name and reversible."""
    return "".join(
        char if _PLAIN.fullmatch(char) else "".join(f"={byte:02X}" for byte in char.encode("utf-8"))
        for char in text
    )


def decode_component(text: str) -> str:
    """Reverse ``encode_component``; raise ``ValueError`` on text it cannot have produced."""
    if not _ENCODED.fullmatch(text):
        raise ValueError(f"{text!r} is not an encoded entity name or id")

    raw = bytearray()
    position = 0
    for match in _ESCAPE.finditer(text):
        raw += text[position:match.start()].encode("ascii")
        raw.append(int(match.group(1), 16))
        position = match.end()
    raw += text[position:].encode("ascii")

    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{text!r} does not decode to UTF-8 text") from None

    # Only the canonical spelling is accepted, so each name has one channel.
    if encode_component(decoded) != text:
        raise ValueError(f"{text!r} is not the canonical encoding of {decoded!r}")

    return decoded


def entity_of(obj: Any, entity: str | None = None) -> str:
    """Return the entity name of ``obj``: ``entity``, else ``pusher_entity``, else its class name."""
    if entity is None:
        cls = obj if isinstance(obj, type) else type(obj)
        entity = getattr(cls, "pusher_entity", None) or cls.__name__

    if not isinstance(entity, str) or not entity:
        raise ValueError(f"entity name must be a non-empty string, not {entity!r}")

    return entity


def object_id_of(obj: Any, id_param: str | None = None) -> str:
    """Return the primary key of ``obj`` as text, read from ``id_param`` or ``pusher_id`` (default "id")."""
    id_param = id_param or getattr(type(obj), "pusher_id", None) or "id"

    try:
        value = getattr(obj, id_param)
    except AttributeError:
        raise ValueError(
            f"{type(obj).__name__} has no attribute {id_param!r} to use as its id; set the "
            "class attribute pusher_id to the name of its primary-key attribute, or pass id_param="
        ) from None

    if value is None or value == "":
        raise ValueError(
            f"{type(obj).__name__}.{id_param} is {value!r}; an object needs a primary key "
            "(for example, save it first) before it has a channel"
        )

    return str(value)


def channel_name(
    obj: Any = None,
    *,
    entity: str | None = None,
    object_id: Any = None,
    id_param: str | None = None,
    prefix: str | None = None,
    settings: PusherSettings | None = None,
) -> str:
    """Return the private channel of an object: ``private-<prefix><Entity>.<id>``.

    Give an object, or ``entity`` and ``object_id``. ``prefix`` defaults to
    the settings' ``channel_prefix``. Raises ``ValueError`` when the id is
    missing or the prefix is not a valid channel-name fragment.

    Example::

        channel_name(entity="ChatRoom", object_id=42)  # 'private-ChatRoom.42'
    """
    if obj is None and (entity is None or object_id is None):
        raise ValueError("channel_name needs an object, or both entity= and object_id=")

    entity = entity_of(obj, entity)
    if object_id is None:
        object_id = object_id_of(obj, id_param)
    elif object_id == "":
        raise ValueError("object_id must not be empty")

    if prefix is None:
        prefix = (settings or get_settings()).channel_prefix

    head = f"{PRIVATE_PREFIX}{prefix}{encode_component(entity)}."
    name = head + encode_component(str(object_id))

    if len(name) > MAX_CHANNEL_NAME_LENGTH:
        digest = hashlib.sha256(str(object_id).encode("utf-8")).hexdigest()[:_HASH_HEX_CHARS]
        name = head + HASHED_ID_MARK + digest

    try:
        return validate_channel_name(name)
    except ValueError as error:
        raise ValueError(
            f"cannot build a channel for entity {entity!r} with prefix {prefix!r}: {error}"
        ) from None


def parse_channel(channel: str, *, prefix: str | None = None, settings: PusherSettings | None = None) -> ObjectRef:
    """Return the entity and id that ``channel`` stands for; raise ``ValueError`` if it is not an object channel."""
    if prefix is None:
        prefix = (settings or get_settings()).channel_prefix

    head = PRIVATE_PREFIX + prefix
    if not isinstance(channel, str) or not channel.startswith(head):
        raise ValueError(f"channel {channel!r} does not start with {head!r}")

    body = channel[len(head):]
    if body.count(".") != 1:
        raise ValueError(f"channel {channel!r} is not of the form {head}<Entity>.<id>")

    entity_part, id_part = body.split(".")
    entity = decode_component(entity_part)
    if not entity:
        raise ValueError(f"channel {channel!r} has an empty entity name")

    if id_part.startswith(HASHED_ID_MARK):
        return ObjectRef(entity=entity, object_id=None, channel=channel)

    object_id = decode_component(id_part)
    if not object_id:
        raise ValueError(f"channel {channel!r} has an empty id")

    return ObjectRef(entity=entity, object_id=object_id, channel=channel)
