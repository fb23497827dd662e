"""Rooms, messages, membership, presence and typing state of the chat, in SQLite.

The chat's pages never send data to each other: they write here, notify the
room's channel, and every other page reads what changed from here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import sqlite3
import time

import param
from sqlite_store import SQLiteStore, StoreError, database_path

logger = logging.getLogger(__name__)

CHAT_DB_ENV = "PANEL_PUSHER_CHAT_DB"

MAX_MESSAGE_LENGTH = 2000

MAX_ROOM_NAME_LENGTH = 40

# Long enough for the e-mail addresses that OAuth providers give as user names.
MAX_USER_NAME_LENGTH = 100

# A page refreshes its presence row every PRESENCE_HEARTBEAT seconds; rows older
# than PRESENCE_MAX_AGE belong to pages that are gone without saying so.
PRESENCE_HEARTBEAT = 20.0

PRESENCE_MAX_AGE = 60.0

# "NAME is typing" shows for this many seconds after the last keystroke event.
TYPING_MAX_AGE = 5.0

DEFAULT_ROOMS = ("general", "random")


class RoomNotFound(StoreError):
    """No room has the requested id."""


class Room(param.Parameterized):
    """A chat room; its channel is derived from the entity ``Room`` and ``id``."""

    pusher_entity = "Room"

    id = param.Integer(default=0, doc="""
        Primary key of the room in the chat database.""")

    title = param.String(default="", doc="""
        Name of the room as users see it.""")


class Lobby(param.Parameterized):
    """The list of rooms; pages listen on it to learn about new rooms."""

    pusher_entity = "Lobby"

    id = param.String(default="rooms", constant=True, doc="""
        Fixed id: there is one room list per database.""")


@dataclasses.dataclass(frozen=True)
class Message:
    """One posted chat message."""

    id: int
    room_id: int
    author: str
    body: str
    created_at: dt.datetime


SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages(room_id, id);
CREATE TABLE IF NOT EXISTS members (
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    user TEXT NOT NULL,
    last_read_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user)
);
CREATE TABLE IF NOT EXISTS presence (
    session_id TEXT PRIMARY KEY,
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    user TEXT NOT NULL,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS typing (
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    user TEXT NOT NULL,
    typed_at REAL NOT NULL,
    PRIMARY KEY (room_id, user)
);
"""


def default_chat_db(environ: dict[str, str] | None = None) -> str:
    """Return the chat database path: ``PANEL_PUSHER_CHAT_DB`` or ``chat.sqlite3`` in the data directory."""
    return str(database_path(CHAT_DB_ENV, "chat.sqlite3", environ))


def clean_user_name(name: str) -> str:
    """Return ``name`` stripped, or raise ValueError if it is empty or too long."""
    name = (name or "").strip()

    if not name:
        raise ValueError("Enter a name to join the chat.")
    if len(name) > MAX_USER_NAME_LENGTH:
        raise ValueError(f"Names are at most {MAX_USER_NAME_LENGTH} characters, not {len(name)}.")

    return name


def clean_message(body: str) -> str:
    """Return ``body`` stripped, or raise ValueError if it is empty or over MAX_MESSAGE_LENGTH."""
    body = (body or "").strip()

    if not body:
        raise ValueError("The message is empty. Type something before sending.")
    if len(body) > MAX_MESSAGE_LENGTH:
        raise ValueError(
            f"The message has {len(body):,} characters; the maximum is {MAX_MESSAGE_LENGTH:,}. "
            f"Shorten it and send again."
        )

    return body


def clean_room_name(name: str) -> str:
    """Return ``name`` stripped, or raise ValueError if it is empty or over MAX_ROOM_NAME_LENGTH."""
    name = (name or "").strip().lstrip("#").strip()

    if not name:
        raise ValueError("Enter a name for the new room.")
    if len(name) > MAX_ROOM_NAME_LENGTH:
        raise ValueError(
            f"Room names are at most {MAX_ROOM_NAME_LENGTH} characters, not {len(name)}."
        )

    return name


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class ChatStore(SQLiteStore):
    """Chat data in one SQLite file; safe to share between sessions, threads and processes.

    Example::

        store = ChatStore("/tmp/chat.sqlite3")
        store.initialize()
        room = store.create_room("general", user="ann")
        store.post_message(room.id, "ann", "hello")
    """

    schema = SCHEMA

    def __init__(self, path: str | os.PathLike[str] | None = None, **kwargs):
        super().__init__(path or default_chat_db(), **kwargs)

    def initialize(self, default_rooms: tuple[str, ...] = DEFAULT_ROOMS) -> None:
        """Create the tables, and the default rooms when there are no rooms yet."""
        super().initialize()

        if not self.list_rooms():
            for name in default_rooms:
                self.create_room(name, user="system")

    # Rooms

    def create_room(self, name: str, *, user: str) -> Room:
        """Create a room and return it; raise ValueError for a bad or duplicate name."""
        name = clean_room_name(name)

        try:
            with self.transaction() as connection:
                cursor = connection.execute(
                    "INSERT INTO rooms (name, created_by, created_at) VALUES (?, ?, ?)",
                    (name, user, _utcnow().isoformat()),
                )
        except sqlite3.IntegrityError as error:
            raise ValueError(f"A room named {name!r} already exists.") from error

        return Room(id=cursor.lastrowid, title=name)

    def list_rooms(self) -> list[Room]:
        """Return all rooms, oldest first."""
        with self.connection() as connection:
            rows = connection.execute("SELECT id, name FROM rooms ORDER BY id").fetchall()

        return [Room(id=row["id"], title=row["name"]) for row in rows]

    def get_room(self, room_id: int) -> Room:
        """Return the room with ``room_id``, or raise RoomNotFound."""
        with self.connection() as connection:
            row = connection.execute(
                "SELECT id, name FROM rooms WHERE id = ?", (room_id,)
            ).fetchone()

        if row is None:
            raise RoomNotFound(f"There is no room with id {room_id!r}.")

        return Room(id=row["id"], title=row["name"])

    # Messages

    def post_message(self, room_id: int, author: str, body: str) -> Message:
        """Validate and store a message, mark it read for its author, and return it."""
        body = clean_message(body)
        author = clean_user_name(author)
        created_at = _utcnow()

        with self.transaction() as connection:
            if connection.execute("SELECT 1 FROM rooms WHERE id = ?", (room_id,)).fetchone() is None:
                raise RoomNotFound(f"There is no room with id {room_id!r}.")

            cursor = connection.execute(
                "INSERT INTO messages (room_id, author, body, created_at) VALUES (?, ?, ?, ?)",
                (room_id, author, body, created_at.isoformat()),
            )
            message_id = cursor.lastrowid
            self._mark_read(connection, room_id, author, message_id)
            connection.execute(
                "DELETE FROM typing WHERE room_id = ? AND user = ?", (room_id, author)
            )

        return Message(message_id, room_id, author, body, created_at)

    def messages(self, room_id: int, *, after_id: int = 0, limit: int = 200) -> list[Message]:
        """Return up to ``limit`` of the newest messages of a room with id above ``after_id``, oldest first."""
        with self.connection() as connection:
            rows = connection.execute(
                "SELECT id, room_id, author, body, created_at FROM messages "
                "WHERE room_id = ? AND id > ? ORDER BY id DESC LIMIT ?",
                (room_id, after_id, limit),
            ).fetchall()

        return [
            Message(
                row["id"],
                row["room_id"],
                row["author"],
                row["body"],
                dt.datetime.fromisoformat(row["created_at"]),
            )
            for row in reversed(rows)
        ]

    # Membership and unread counts

    def join(self, room_id: int, user: str) -> None:
        """Add ``user`` to the members of a room; a no-op if already a member."""
        with self.transaction() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO members (room_id, user, last_read_id) VALUES (?, ?, "
                "(SELECT COALESCE(MAX(id), 0) FROM messages WHERE room_id = ?))",
                (room_id, user, room_id),
            )

    def joined_room_ids(self, user: str) -> list[int]:
        """Return the ids of the rooms ``user`` has joined."""
        with self.connection() as connection:
            rows = connection.execute(
                "SELECT room_id FROM members WHERE user = ? ORDER BY room_id", (user,)
            ).fetchall()

        return [row["room_id"] for row in rows]

    def mark_read(self, room_id: int, user: str, message_id: int) -> None:
        """Record that ``user`` has seen the messages of a room up to ``message_id``."""
        with self.transaction() as connection:
            self._mark_read(connection, room_id, user, message_id)

    def unread_counts(self, user: str) -> dict[int, int]:
        """Return, per joined room, how many messages by others ``user`` has not seen."""
        with self.connection() as connection:
            rows = connection.execute(
                "SELECT m.room_id AS room_id, COUNT(msg.id) AS unread FROM members m "
                "LEFT JOIN messages msg ON msg.room_id = m.room_id "
                "AND msg.id > m.last_read_id AND msg.author != m.user "
                "WHERE m.user = ? GROUP BY m.room_id",
                (user,),
            ).fetchall()

        return {row["room_id"]: row["unread"] for row in rows}

    @staticmethod
    def _mark_read(connection: sqlite3.Connection, room_id: int, user: str, message_id: int) -> None:
        connection.execute(
            "INSERT INTO members (room_id, user, last_read_id) VALUES (?, ?, ?) "
            "ON CONFLICT (room_id, user) DO UPDATE "
            "SET last_read_id = MAX(last_read_id, excluded.last_read_id)",
            (room_id, user, message_id),
        )

    # Presence

    def set_presence(self, session_id: str, room_id: int, user: str, *, now: float | None = None) -> None:
        """Record that the page ``session_id`` of ``user`` shows a room (also the heartbeat)."""
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO presence (session_id, room_id, user, seen_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET room_id = excluded.room_id, "
                "user = excluded.user, seen_at = excluded.seen_at",
                (session_id, room_id, user, time.time() if now is None else now),
            )

    def clear_presence(self, session_id: str) -> int | None:
        """Forget the page ``session_id``; return the room it was in, or None."""
        with self.transaction() as connection:
            row = connection.execute(
                "SELECT room_id FROM presence WHERE session_id = ?", (session_id,)
            ).fetchone()
            connection.execute("DELETE FROM presence WHERE session_id = ?", (session_id,))

        return None if row is None else row["room_id"]

    def present_users(self, room_id: int, *, now: float | None = None,
                      max_age: float = PRESENCE_MAX_AGE) -> list[str]:
        """Return the sorted names of users with a page on a room seen in the last ``max_age`` seconds."""
        since = (time.time() if now is None else now) - max_age

        with self.connection() as connection:
            rows = connection.execute(
                "SELECT DISTINCT user FROM presence WHERE room_id = ? AND seen_at >= ? ORDER BY user",
                (room_id, since),
            ).fetchall()

        return [row["user"] for row in rows]

    # Typing

    def set_typing(self, room_id: int, user: str, *, now: float | None = None) -> None:
        """Record that ``user`` is typing in a room now."""
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO typing (room_id, user, typed_at) VALUES (?, ?, ?) "
                "ON CONFLICT (room_id, user) DO UPDATE SET typed_at = excluded.typed_at",
                (room_id, user, time.time() if now is None else now),
            )

    def typing_users(self, room_id: int, *, now: float | None = None,
                     max_age: float = TYPING_MAX_AGE) -> dict[str, float]:
        """Return ``{user: typed_at}`` for users who typed in a room in the last ``max_age`` seconds."""
        since = (time.time() if now is None else now) - max_age

        with self.connection() as connection:
            rows = connection.execute(
                "SELECT user, typed_at FROM typing WHERE room_id = ? AND typed_at >= ? ORDER BY user",
                (room_id, since),
            ).fetchall()

        return {row["user"]: row["typed_at"] for row in rows}
