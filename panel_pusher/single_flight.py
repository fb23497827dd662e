"""Share one call among concurrent or repeated callers with the same key.

When 1,000 pages in one process refetch the same object after the same
notification, only the first call reads the data store and the others get
its result. Callers that arrive while the call runs wait for it. Callers that
arrive within ``ttl`` seconds after it finished get the stored result. Put the
notification's message id in the key so that the next change reads again::

    def reload(notification):
        room = single_flight(("room", notification.object_id, notification.message_id),
                             lambda: store.load_room(notification.object_id))
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

# Seconds a finished result stays shared.
DEFAULT_TTL_SECONDS = 5.0

# Finished results kept at most; the oldest go first.
DEFAULT_MAX_ENTRIES = 1024


class SingleFlight:
    """Calls keyed by a hashable; concurrent and recent callers with the same key share one call."""

    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if ttl < 0:
            raise ValueError(f"ttl must be >= 0 seconds, not {ttl!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, not {max_entries!r}")

        self.ttl = ttl
        self.max_entries = max_entries
        self.calls = 0
        self.shared = 0
        self._lock = threading.Lock()
        # Future of each key, and when it finished (None while running).
        self._entries: OrderedDict[Hashable, tuple[Future[Any], float | None]] = OrderedDict()

    def _claim(self, key: Hashable) -> tuple[Future[Any], bool]:
        """Return the key's future and whether the caller must run the call."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(key)
            if entry is not None:
                self.shared += 1
                return entry[0], False

            future: Future[Any] = Future()
            self._entries[key] = (future, None)
            self.calls += 1
            return future, True

    def _settle(self, key: Hashable, future: Future[Any]) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] is not future:
                return

            if future.exception() is not None or self.ttl == 0:
                # Failures are not shared with later callers; they try again.
                del self._entries[key]
            else:
                self._entries[key] = (future, time.monotonic())
                self._entries.move_to_end(key)
                self._expire(time.monotonic())

    def _expire(self, now: float) -> None:
        finished = [
            key for key, (_, done_at) in self._entries.items()
            if done_at is not None and now - done_at > self.ttl
        ]
        for key in finished:
            del self._entries[key]

        while len(self._entries) > self.max_entries:
            oldest = next((k for k, (_, done_at) in self._entries.items() if done_at is not None), None)
            if oldest is None:
                break
            del self._entries[oldest]

    def do(self, key: Hashable, fn: Callable[[], T]) -> T:
        """Return ``fn()``, or the result of the call already made with ``key``; exceptions are shared too."""
        future, owner = self._claim(key)
        if not owner:
            return future.result()

        try:
            future.set_result(fn())
        except BaseException as error:
            future.set_exception(error)
        finally:
            self._settle(key, future)

        return future.result()

    async def ado(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        """Async twin of ``do`` for a coroutine function; waiting does not block the loop."""
        future, owner = self._claim(key)
        if not owner:
            return await asyncio.wrap_future(future)

        try:
            future.set_result(await fn())
        except BaseException as error:
            future.set_exception(error)
        finally:
            self._settle(key, future)

        return future.result()

    def forget(self, key: Hashable) -> None:
        """Drop the stored result of ``key``, so that the next call runs again."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[1] is not None:
                del self._entries[key]


_default = SingleFlight()


def single_flight(key: Hashable, fn: Callable[[], T]) -> T:
    """Return ``fn()`` shared among concurrent and recent callers with ``key`` (process-wide)."""
    return _default.do(key, fn)


async def asingle_flight(key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
    """Async twin of ``single_flight``."""
    return await _default.ado(key, fn)
