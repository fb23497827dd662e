"""The embedded Pusher-protocol server, on Tornado."""

from __future__ import annotations

from panel_pusher.server.app import EmbeddedServer, ServerConfig, run_server, start_server

__all__ = ["EmbeddedServer", "ServerConfig", "run_server", "start_server"]
