from __future__ import annotations

import sqlite3

import pytest
from chat_store import (
    MAX_MESSAGE_LENGTH,
    ChatStore,
    RoomNotFound,
    clean_message,
    default_chat_db,
)
from sqlite_store import StoreUnavailable


@pytest.fixture
def store(tmp_path):
    store = ChatStore(tmp_path / "data" / "chat.sqlite3", busy_timeout=0.2)
    store.initialize()
    return store


def test_initialize_creates_default_rooms(store):
    assert [room.title for room in store.list_rooms()] == ["general", "random"]


def test_initialize_twice_keeps_rooms(store):
    store.create_room("extra", user="ann")

    store.initialize()

    assert [room.title for room in store.list_rooms()] == ["general", "random", "extra"]


def test_default_path_outside_repo(tmp_path):
    path = default_chat_db({"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")})

    assert path == str(tmp_path / "xdg" / "panel_pusher" / "chat.sqlite3")


def test_env_path_wins(tmp_path):
    path = default_chat_db({"PANEL_PUSHER_CHAT_DB": str(tmp_path / "x.db")})

    assert path == str(tmp_path / "x.db")


def test_post_and_read_messages(store):
    room = store.list_rooms()[0]

    first = store.post_message(room.id, "ann", "  hello  ")
    second = store.post_message(room.id, "bob", "hi ann")

    assert first.body == "hello"
    assert [m.body for m in store.messages(room.id)] == ["hello", "hi ann"]
    assert [m.id for m in store.messages(room.id, after_id=first.id)] == [second.id]


def test_messages_limit_keeps_newest(store):
    room = store.list_rooms()[0]
    for index in range(5):
        store.post_message(room.id, "ann", f"m{index}")

    assert [m.body for m in store.messages(room.id, limit=2)] == ["m3", "m4"]


@pytest.mark.parametrize("body", ["", "   ", "\n"])
def test_empty_message_rejected(store, body):
    room = store.list_rooms()[0]

    with pytest.raises(ValueError, match="empty"):
        store.post_message(room.id, "ann", body)

    assert store.messages(room.id) == []


def test_message_length_limit():
    assert len(clean_message("x" * MAX_MESSAGE_LENGTH)) == MAX_MESSAGE_LENGTH

    with pytest.raises(ValueError, match="2,001 characters; the maximum is 2,000"):
        clean_message("x" * (MAX_MESSAGE_LENGTH + 1))


def test_unknown_room_rejected(store):
    with pytest.raises(RoomNotFound, match="no room with id 999"):
        store.post_message(999, "ann", "hello")

    with pytest.raises(RoomNotFound):
        store.get_room(999)


def test_duplicate_room_rejected(store):
    with pytest.raises(ValueError, match="already exists"):
        store.create_room("#general", user="ann")


@pytest.mark.parametrize("name", ["", "  ", "#", "x" * 41])
def test_bad_room_name_rejected(store, name):
    with pytest.raises(ValueError):
        store.create_room(name, user="ann")


def test_html_stored_verbatim(store):
    room = store.list_rooms()[0]

    store.post_message(room.id, "ann", "<script>alert(1)</script>")

    assert store.messages(room.id)[0].body == "<script>alert(1)</script>"


def test_unread_counts_skip_own_messages(store):
    general, random_room = store.list_rooms()
    store.join(general.id, "ann")
    store.join(random_room.id, "ann")

    store.post_message(general.id, "bob", "one")
    latest = store.post_message(general.id, "bob", "two")
    store.post_message(random_room.id, "ann", "mine")

    assert store.unread_counts("ann") == {general.id: 2, random_room.id: 0}

    store.mark_read(general.id, "ann", latest.id)

    assert store.unread_counts("ann")[general.id] == 0


def test_posting_marks_room_read(store):
    room = store.list_rooms()[0]
    store.join(room.id, "ann")
    store.post_message(room.id, "bob", "one")

    store.post_message(room.id, "ann", "reply")

    assert store.unread_counts("ann") == {room.id: 0}


def test_join_starts_with_nothing_unread(store):
    room = store.list_rooms()[0]
    store.post_message(room.id, "bob", "before ann joined")

    store.join(room.id, "ann")
    store.join(room.id, "ann")

    assert store.unread_counts("ann") == {room.id: 0}
    assert store.joined_room_ids("ann") == [room.id]


def test_mark_read_never_goes_back(store):
    room = store.list_rooms()[0]
    message = store.post_message(room.id, "bob", "one")
    store.mark_read(room.id, "ann", message.id)

    store.mark_read(room.id, "ann", 0)
    store.post_message(room.id, "bob", "two")

    assert store.unread_counts("ann") == {room.id: 1}


def test_presence_by_session(store):
    general, random_room = store.list_rooms()
    store.set_presence("s1", general.id, "bob", now=1000.0)
    store.set_presence("s2", general.id, "ann", now=1000.0)
    store.set_presence("s3", general.id, "ann", now=1000.0)

    assert store.present_users(general.id, now=1001.0) == ["ann", "bob"]

    store.set_presence("s1", random_room.id, "bob", now=1002.0)

    assert store.present_users(general.id, now=1003.0) == ["ann"]
    assert store.clear_presence("s2") == general.id
    assert store.present_users(general.id, now=1003.0) == ["ann"]
    assert store.clear_presence("s3") == general.id
    assert store.present_users(general.id, now=1003.0) == []
    assert store.clear_presence("unknown") is None


def test_presence_expires(store):
    room = store.list_rooms()[0]
    store.set_presence("s1", room.id, "bob", now=1000.0)

    assert store.present_users(room.id, now=1059.0) == ["bob"]
    assert store.present_users(room.id, now=1061.0) == []


def test_typing_expires_and_clears_on_post(store):
    room = store.list_rooms()[0]
    store.set_typing(room.id, "bob", now=1000.0)

    assert store.typing_users(room.id, now=1004.0) == {"bob": 1000.0}
    assert store.typing_users(room.id, now=1006.0) == {}

    store.set_typing(room.id, "bob")
    store.post_message(room.id, "bob", "done typing")

    assert store.typing_users(room.id) == {}


def test_locked_database_reports_and_keeps_data(store):
    room = store.list_rooms()[0]
    store.post_message(room.id, "ann", "before lock")
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")

    try:
        with pytest.raises(StoreUnavailable, match="locked by another program"):
            store.post_message(room.id, "ann", "during lock")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    store.post_message(room.id, "ann", "after lock")
    assert [m.body for m in store.messages(room.id)] == ["before lock", "after lock"]


def test_missing_database_not_recreated(store):
    store.path.unlink()

    with pytest.raises(StoreUnavailable, match="is missing"):
        store.list_rooms()

    assert not store.path.exists()


def test_unwritable_data_dir_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = ChatStore(blocker / "chat.sqlite3")

    with pytest.raises(StoreUnavailable, match="Cannot create the data directory"):
        store.initialize()


def test_not_a_database_reported(tmp_path):
    path = tmp_path / "chat.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(StoreUnavailable, match="not an SQLite database"):
        ChatStore(path).initialize()


def test_user_name_limits(store):
    room = store.list_rooms()[0]

    assert store.post_message(room.id, "a" * 100, "long name").author == "a" * 100
    with pytest.raises(ValueError, match="at most 100 characters, not 101"):
        store.post_message(room.id, "a" * 101, "too long")
    with pytest.raises(ValueError, match="Enter a name"):
        store.post_message(room.id, "  ", "no name")
