"""Fixtures for the listening tests: a clean process state after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from panel_pusher.auth import set_authorize
from panel_pusher.listen.hub import stop_hubs
from panel_pusher.settings import set_settings


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    """Leave no hub, default settings or authorize hook behind."""
    yield
    stop_hubs()
    set_settings(None)
    set_authorize(None)
