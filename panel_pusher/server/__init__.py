"""The embedded Pusher-protocol server, on Tornado.

It serves the websocket protocol at ``/app/{key}`` and the Pusher HTTP API at
the root, for one app. Start it in-process with ``start_server``, or stand-alone
with ``panel-pusher server``::

    from panel_pusher.server import start_server

    with start_server(port=0) as server:
        print(server.url, server.app_id, server.key)
"""

from __future__ import annotations

from panel_pusher.server.app import EmbeddedServer, ServerConfig, run_server, start_server

__all__ = ["EmbeddedServer", "ServerConfig", "run_server", "start_server"]
