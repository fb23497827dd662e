"""SQLite plumbing shared by the example apps: file location, connections, errors.

Each store opens a short-lived connection per operation, so that any Panel
session, thread or process can use the same database file. The database and
its directory are created by ``initialize()``; after that, a file that
disappears is reported as missing rather than silently recreated empty.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "PANEL_PUSHER_DATA_DIR"

# Seconds a write waits for another connection's lock before it gives up.
# NOTE: the apps call the store on the Panel server's event loop, so while a
# write waits, every session of that process waits with it.
DEFAULT_BUSY_TIMEOUT = 5.0


class StoreError(Exception):
    """A data-store operation failed; ``str(error)`` is meant for the user."""


class StoreUnavailable(StoreError):
    """The database file is missing, unreadable or locked."""


def default_data_dir(environ: dict[str, str] | None = None) -> Path:
    """Return the directory for the apps' databases.

    ``PANEL_PUSHER_DATA_DIR`` wins; otherwise ``$XDG_DATA_HOME/panel_pusher``,
    falling back to ``~/.local/share/panel_pusher``, which keeps the files out
    of the source tree.
    """
    env = os.environ if environ is None else environ

    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV]).expanduser()

    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "panel_pusher"


def database_path(env_var: str, filename: str, environ: dict[str, str] | None = None) -> Path:
    """Return the database file named by ``env_var``, or ``filename`` in the data directory."""
    env = os.environ if environ is None else environ

    if env.get(env_var):
        return Path(env[env_var]).expanduser()

    return default_data_dir(env) / filename


class SQLiteStore:
    """Base class: owns the file path, the schema script and the error mapping."""

    #: SQL run by ``initialize()``; statements must be idempotent.
    schema: str = ""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT):
        self.path = Path(path)
        self.busy_timeout = busy_timeout

    def initialize(self) -> None:
        """Create the directory, the database file and the tables if they do not exist."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreUnavailable(
                f"Cannot create the data directory {str(self.path.parent)!r}: {error.strerror}. "
                f"Set the database path to a writable location."
            ) from error

        with self._connect(create=True) as connection:
            connection.executescript(self.schema)

        logger.info("Using database %s", self.path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Yield a connection inside a transaction; commit on success, roll back on error."""
        with self._connect(create=False) as connection:
            try:
                connection.execute("BEGIN IMMEDIATE")
                yield connection
                connection.commit()
            except BaseException:
                connection.rollback()
                raise

    def connection(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """Return a context manager with a connection for reads (autocommit mode)."""
        return self._connect(create=False)

    @contextlib.contextmanager
    def _connect(self, *, create: bool) -> Iterator[sqlite3.Connection]:
        mode = "rwc" if create else "rw"
        uri = f"{self.path.resolve().as_uri()}?mode={mode}"

        try:
            connection = sqlite3.connect(
                uri, uri=True, timeout=self.busy_timeout, isolation_level=None
            )
        except sqlite3.OperationalError as error:
            raise self._unavailable(error) from error

        connection.row_factory = sqlite3.Row
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            yield connection
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as error:
            raise self._unavailable(error) from error
        finally:
            connection.close()

    def _unavailable(self, error: sqlite3.DatabaseError) -> StoreUnavailable:
        text = str(error)
        logger.error("Database %s failed: %s", self.path, text)

        if "locked" in text or "busy" in text:
            return StoreUnavailable(
                f"The database {self.path.name} is locked by another program "
                f"(waited {self.busy_timeout:g} s). Nothing was saved; try again in a moment."
            )

        if "unable to open" in text and not self.path.exists():
            return StoreUnavailable(
                f"The database file {str(self.path)!r} is missing. "
                f"Restart the app to create a new one, or restore the file."
            )

        if "no such table" in text:
            return StoreUnavailable(
                f"The database file {str(self.path)!r} has no app tables ({text}). "
                f"Restart the app to create them."
            )

        if "not a database" in text:
            return StoreUnavailable(
                f"The file {str(self.path)!r} is not an SQLite database. "
                f"Point the app at another path or move the file away."
            )

        return StoreUnavailable(f"The database {str(self.path)!r} failed: {text}.")
