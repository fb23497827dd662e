"""Fixtures for the listening tests: a Pusher server per test and a clean process state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from panel_pusher.auth import set_authorize
from panel_pusher.listen.hub import stop_hubs
from panel_pusher.server import EmbeddedServer, start_server
from panel_pusher.settings import PusherSettings, set_settings

from .support import settings_for


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    """Leave no hub, default settings or authorize hook behind."""
    yield
    stop_hubs()
    set_settings(None)
    set_authorize(None)


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    with start_server("127.0.0.1", 0) as running:
        yield running


@pytest.fixture
def settings(server: EmbeddedServer) -> PusherSettings:
    """Settings for ``server``, also installed as the process default."""
    configured = settings_for(server)
    set_settings(configured)
    return configured
