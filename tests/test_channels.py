"""Channel names from entity and primary key, their encoding, and the Notification body."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import param
import pytest

from panel_pusher.channels import (
    HASHED_ID_MARK,
    channel_name,
    decode_component,
    encode_component,
    parse_channel,
)
from panel_pusher.notification import Notification
from panel_pusher.settings import PusherSettings
from panel_pusher.validation import MAX_CHANNEL_NAME_LENGTH, validate_channel_name


class Room(param.Parameterized):
    id = param.Integer(default=None, allow_None=True)


class Order(param.Parameterized):
    pusher_entity = "SalesOrder"

    pusher_id = "number"

    number = param.String(default=None, allow_None=True)


class PlainRow:
    """Not a Parameterized: any object with an id attribute works."""

    def __init__(self, id):
        self.id = id


NO_PREFIX = PusherSettings()


def test_default_entity_and_id():
    assert channel_name(Room(id=42), settings=NO_PREFIX) == "private-Room.42"


def test_same_row_same_channel_regardless_of_identity():
    first, second = Room(id=7), Room(id=7)

    assert first.name != second.name
    assert channel_name(first, settings=NO_PREFIX) == channel_name(second, settings=NO_PREFIX)


def test_class_overrides_entity_and_id():
    assert channel_name(Order(number="A-17"), settings=NO_PREFIX) == "private-SalesOrder.A-17"


def test_call_overrides_entity_and_id():
    order = Order(number="A-17")

    assert channel_name(order, entity="Invoice", settings=NO_PREFIX) == "private-Invoice.A-17"
    assert channel_name(order, id_param="name", settings=NO_PREFIX).startswith("private-SalesOrder.Order")


def test_entity_and_id_without_object():
    assert channel_name(entity="Room", object_id=42, settings=NO_PREFIX) == "private-Room.42"


def test_plain_object_and_uuid_id():
    key = uuid.UUID("12345678-1234-5678-1234-567812345678")

    assert channel_name(PlainRow(key), settings=NO_PREFIX) == f"private-PlainRow.{key}"


def test_prefix_from_settings_and_argument():
    assert channel_name(Room(id=1), settings=PusherSettings(channel_prefix="shop-")) == "private-shop-Room.1"
    assert channel_name(Room(id=1), prefix="a.b-", settings=NO_PREFIX) == "private-a.b-Room.1"


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("Room", "Room"),
        ("Chat Room", "Chat=20Room"),
        ("a.b", "a=2Eb"),
        ("x=y", "x=3Dy"),
        ("café", "caf=C3=A9"),
        ("a/b#c", "a=2Fb=23c"),
        ("_-@,;", "_-@,;"),
    ],
)
def test_encode_component(text, encoded):
    assert encode_component(text) == encoded
    assert decode_component(encoded) == text


def test_encoded_names_are_valid_channels():
    hard = "ü / a.b=c #日"

    name = channel_name(entity=hard, object_id=hard, settings=NO_PREFIX)

    assert validate_channel_name(name) == name
    assert parse_channel(name, prefix="").entity == hard
    assert parse_channel(name, prefix="").object_id == hard


def test_entity_with_dot_cannot_collide():
    first = channel_name(entity="a.b", object_id="c", settings=NO_PREFIX)
    second = channel_name(entity="a", object_id="b.c", settings=NO_PREFIX)

    assert first != second


@pytest.mark.parametrize("text", ["a.b", "a=2", "a=zz", "a=2e", "=41", "a b", "=FF"])
def test_decode_rejects_non_canonical(text):
    with pytest.raises(ValueError):
        decode_component(text)


def test_long_id_is_hashed_within_limit():
    long_id = "x" * 500

    name = channel_name(entity="Room", object_id=long_id, settings=NO_PREFIX)

    assert len(name) <= MAX_CHANNEL_NAME_LENGTH
    assert HASHED_ID_MARK in name
    assert name == channel_name(entity="Room", object_id=long_id, settings=NO_PREFIX)
    assert name != channel_name(entity="Room", object_id="y" * 500, settings=NO_PREFIX)
    assert parse_channel(name, prefix="").object_id is None


def test_too_long_entity_rejected():
    with pytest.raises(ValueError, match="200"):
        channel_name(entity="E" * 300, object_id=1, settings=NO_PREFIX)


@pytest.mark.parametrize("room_id", [None, ""])
def test_missing_id_rejected(room_id):
    with pytest.raises(ValueError, match="primary key"):
        channel_name(PlainRow(room_id), settings=NO_PREFIX)


def test_missing_id_attribute_names_fix():
    with pytest.raises(ValueError, match="pusher_id"):
        channel_name(object(), settings=NO_PREFIX)


def test_neither_object_nor_entity_rejected():
    with pytest.raises(ValueError, match="entity= and object_id="):
        channel_name(entity="Room", settings=NO_PREFIX)


@pytest.mark.parametrize(
    "channel",
    ["public-Room.1", "private-Room", "private-Room.1.2", "private-.1", "private-Room.", "private-Ro om.1"],
)
def test_parse_rejects_other_channels(channel):
    with pytest.raises(ValueError):
        parse_channel(channel, prefix="")


def test_parse_requires_prefix():
    with pytest.raises(ValueError, match="private-shop-"):
        parse_channel("private-Room.1", prefix="shop-")


def test_notification_round_trip():
    sent = Notification.create("Chat Room", "42", "refresh", "private-Chat=20Room.42", user="ålice", origin="abc")

    received = Notification.from_event(sent.channel, "refresh", sent.to_json())

    assert received == sent
    assert received.changed_at.tzinfo is dt.timezone.utc
    assert json.loads(sent.to_json())["changed_at"].endswith("Z")


def test_notification_message_ids_unique():
    ids = {Notification.create("E", "1", "a", "private-E.1").message_id for _ in range(100)}

    assert len(ids) == 100


def test_notification_hides_origin_in_repr():
    assert "secret-token" not in repr(Notification.create("E", "1", "a", "private-E.1", origin="secret-token"))


GOOD = {"entity": "Room", "id": "1", "changed_at": "2026-01-02T03:04:05Z", "user": None, "message_id": "m1"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        (json.dumps({**GOOD, "entity": ""}), "entity"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "id"}), "'id'"),
        (json.dumps({**GOOD, "message_id": 5}), "message_id"),
        (json.dumps({**GOOD, "user": 5}), "user"),
        (json.dumps({**GOOD, "changed_at": "yesterday"}), "ISO 8601"),
        (json.dumps({**GOOD, "changed_at": "2026-01-02T03:04:05"}), "time zone"),
        (json.dumps({**GOOD, "changed_at": 1700000000}), "ISO 8601"),
    ],
)
def test_notification_rejects_bad_bodies(data, message):
    with pytest.raises(ValueError, match=message):
        Notification.from_event("private-Room.1", "refresh", data)


def test_notification_converts_offset_to_utc():
    body = json.dumps({**GOOD, "changed_at": "2026-01-02T05:04:05+02:00"})

    received = Notification.from_event("private-Room.1", "refresh", body)

    assert received.changed_at == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
