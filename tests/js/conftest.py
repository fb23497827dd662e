"""Fixtures for the pusher-js 8 conformance tests.

The tests need ``node`` and ``npm`` on PATH. pusher-js is installed from npm
once into a cache outside the repository (``PANEL_PUSHER_NODE_CACHE``, by
default ``~/.cache/panel_pusher-tests/pusher-js-8``) and reused afterwards.
Without Node the tests are skipped, except when the environment variable
``CI`` is ``true``: there they fail, because CI must run them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pusher
import pytest

from pusher_js_app import APP_KEY, make_sdk, start_test_server
from pusher_js_driver import (
    NodeUnavailable,
    PusherJsClient,
    SdkAuthorizer,
    default_cache_dir,
    ensure_pusher_js,
    find_node,
)


def running_in_ci() -> bool:
    """Return True when the CI environment variable is set to a true value."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def node_unavailable(reason: str) -> None:
    """Skip the requesting test, or fail it in CI."""
    if running_in_ci():
        pytest.fail(f"{reason}; CI=true requires the pusher-js tests to run", pytrace=False)

    pytest.skip(reason)


@pytest.fixture(scope="session")
def node_executable() -> str:
    """Return the node executable, or skip (fail in CI) when it is missing."""
    try:
        return find_node()
    except NodeUnavailable as exc:
        node_unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def pusher_js_modules(node_executable: str) -> Path:
    """Return a node_modules folder holding pusher-js 8, installing it once."""
    try:
        return ensure_pusher_js(default_cache_dir())
    except NodeUnavailable as exc:
        node_unavailable(str(exc))
        raise


@pytest.fixture
def server() -> Iterator[Any]:
    """Run the embedded server on a free port for one test."""
    handle = start_test_server()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def sdk(server: Any) -> pusher.Pusher:
    """Return a ``pusher`` SDK client for the test server."""
    return make_sdk(server.port)


ClientFactory = Callable[..., PusherJsClient]


@pytest.fixture
def pusher_js(node_executable: str, pusher_js_modules: Path) -> Iterator[ClientFactory]:
    """Return a factory for pusher-js clients; all of them are closed after the test.

    ``pusher_js(port, name=..., user_id=..., user_info=..., tamper=..., key=...)``
    starts a client whose authorization requests are signed by the SDK as
    ``user_id``. Pass ``authorizer=`` to replace the signing entirely.
    """
    clients: list[PusherJsClient] = []

    def make(
        port: int,
        *,
        name: str = "client",
        user_id: str = "user-1",
        user_info: dict[str, Any] | None = None,
        tamper: bool = False,
        key: str = APP_KEY,
        authorizer: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> PusherJsClient:
        if authorizer is None:
            authorizer = SdkAuthorizer(make_sdk(port), user_id=user_id, user_info=user_info or {}, tamper=tamper)

        client = PusherJsClient(
            node_executable,
            pusher_js_modules,
            key=key,
            port=port,
            authorizer=authorizer,
            name=name,
        )
        clients.append(client)
        return client

    yield make

    for client in clients:
        client.close()
