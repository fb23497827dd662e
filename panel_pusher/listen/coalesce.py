"""Latest-wins coalescing of work per key, so a burst of events costs one run.

While a run for a key is scheduled or in progress, newer items replace the
waiting one instead of scheduling another run. When the run ends, the newest
item that arrived meanwhile gets exactly one more run. Thread-safe: offers
come from pysher's thread, runs happen on a session's loop.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

_EMPTY = object()


class Coalescer(Generic[T]):
    """Per-key slots that keep only the newest waiting item."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Newest item waiting for a run, per key.
        self._waiting: dict[Hashable, T] = {}
        # Keys with a run scheduled or in progress.
        self._busy: set[Hashable] = set()
        self.replaced = 0

    def offer(self, key: Hashable, item: T) -> bool:
        """Store ``item`` as the newest for ``key``; return True if the caller must schedule a run."""
        with self._lock:
            if key in self._waiting:
                self.replaced += 1
            self._waiting[key] = item

            if key in self._busy:
                return False

            self._busy.add(key)
            return True

    def take(self, key: Hashable) -> T | None:
        """Return the newest item for ``key`` at the start of a run, or None if there is none."""
        with self._lock:
            return self._waiting.pop(key, None)

    def finish(self, key: Hashable) -> bool:
        """End a run; return True if a newer item arrived and the caller must schedule another run."""
        with self._lock:
            if key in self._waiting:
                return True

            self._busy.discard(key)
            return False

    def clear(self) -> None:
        """Drop every waiting item and forget every run."""
        with self._lock:
            self._waiting.clear()
            self._busy.clear()
