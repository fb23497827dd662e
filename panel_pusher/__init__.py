"""Push refreshes into Panel sessions over the Pusher Channels protocol."""

from __future__ import annotations

__version__ = "0.1.0"

__all__: list[str] = []
