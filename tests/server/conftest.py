"""Fixtures: a fresh embedded server on a free 127.0.0.1 port for each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from panel_pusher.server import EmbeddedServer, start_server

from .helpers import WSClient


@pytest.fixture
def make_server() -> Iterator[Callable[..., EmbeddedServer]]:
    """Start servers with custom settings; all are stopped after the test."""
    servers: list[EmbeddedServer] = []

    def make(**kwargs: Any) -> EmbeddedServer:
        server = start_server("127.0.0.1", 0, **kwargs)
        servers.append(server)
        return server

    yield make

    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., EmbeddedServer]) -> EmbeddedServer:
    return make_server()


@pytest.fixture
def connect(server: EmbeddedServer) -> Iterator[Callable[..., WSClient]]:
    """Open raw websocket clients to ``server``; all are closed after the test."""
    clients: list[WSClient] = []

    def open_client(target: EmbeddedServer | None = None, **kwargs: Any) -> WSClient:
        client = WSClient.connect(target or server, **kwargs)
        clients.append(client)
        return client

    yield open_client

    for client in clients:
        client.close()
