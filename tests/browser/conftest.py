"""Fixtures for the browser tests: Chromium, the Pusher server and `panel serve` processes.

Chromium is Debian's ``/usr/bin/chromium``, driven by Playwright; without it
the tests skip, except under ``CI=true``, where a missing Chromium fails the
run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PanelServe,
    PusherServer,
    child_environment,
    database_environment,
    free_port,
)

from panel_pusher.defaults import DEFAULT_APP_ID, DEFAULT_KEY, DEFAULT_SECRET


# Module scope, because Playwright's sync API marks an asyncio event loop
# as running on the main thread while it is open, and later tests in the run
# (such as ones that call asyncio.run) need the main thread without one.
@pytest.fixture(scope="module")
def chromium():
    """Return a running Chromium, shared by the tests of one module."""
    if not CHROMIUM.exists():
        reason = f"Chromium not found at {CHROMIUM}; install the Debian package 'chromium' to run the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("apps")


@pytest.fixture(scope="module")
def pusher_server(work_dir) -> Iterator[PusherServer]:
    """Run a Pusher server subprocess for the module's apps."""
    server = PusherServer(free_port(), work_dir / "pusher-server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app_env(work_dir, pusher_server) -> dict[str, str]:
    """Return the environment of the app processes: their databases and the test's Pusher server.

    The server is configured explicitly, as a stand-alone server would be, so
    that no app process starts an embedded server of its own while the test
    has stopped this one.
    """
    return child_environment(
        PUSHER_APP_ID=DEFAULT_APP_ID,
        PUSHER_APP_KEY=DEFAULT_KEY,
        PUSHER_APP_SECRET=DEFAULT_SECRET,
        PUSHER_HOST="127.0.0.1",
        PUSHER_PORT=str(pusher_server.port),
        PUSHER_SCHEME="http",
        **database_environment(work_dir),
    )


@pytest.fixture(scope="module")
def serve(work_dir, app_env):
    """Return a function that starts ``panel serve`` for an app and waits until it responds."""
    started: list[PanelServe] = []

    def start(app: str, extra_args: list[str] | None = None) -> PanelServe:
        served = PanelServe(app, app_env, work_dir / f"{app}-{len(started)}.log", extra_args)
        started.append(served)
        served.wait_ready()
        return served

    yield start

    for served in started:
        served.stop()
