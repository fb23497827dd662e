"""Fixtures shared by the notify, auth and listening tests: a real server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from panel_pusher.server import EmbeddedServer, start_server
from panel_pusher.settings import PusherSettings, set_settings


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    """An embedded server on a free port of 127.0.0.1."""
    with start_server("127.0.0.1", 0) as running:
        yield running


@pytest.fixture
def settings(server: EmbeddedServer) -> Iterator[PusherSettings]:
    """Settings for ``server`` as a configured server, installed as the process default.

    Teardown stops every hub and removes the default settings and authorize hook.
    """
    from panel_pusher.auth import set_authorize
    from panel_pusher.listen.hub import stop_hubs

    configured = PusherSettings(
        app_id=server.app_id, key=server.key, secret=server.secret,
        host="127.0.0.1", port=server.port, scheme="http",
    )
    set_settings(configured)
    yield configured

    stop_hubs()
    set_settings(None)
    set_authorize(None)
