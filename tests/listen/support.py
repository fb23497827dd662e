"""Helpers for the listening tests: servers on free 127.0.0.1 ports, Panel sessions, waiting."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pusher

from panel_pusher.server import EmbeddedServer
from panel_pusher.settings import PusherSettings

# Seconds a test waits for something to happen before it fails instead of hanging.
WAIT_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT_SECONDS, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is truthy; return its last truthiness (no timing asserts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def settings_for(server: EmbeddedServer | ServerProcess, **overrides: Any) -> PusherSettings:
    """Settings that point at ``server`` as a configured (not embedded) server."""
    values = dict(
        app_id=server.app_id, key=server.key, secret=server.secret,
        host="127.0.0.1", port=server.port, scheme="http",
    )
    values.update(overrides)
    return PusherSettings(**values)


def get_json(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def occupied_channels(server: EmbeddedServer | ServerProcess) -> dict[str, Any]:
    """Return the server's occupied channels through its HTTP channels API."""
    client = pusher.Pusher(
        app_id=server.app_id, key=server.key, secret=server.secret,
        host="127.0.0.1", port=server.port, ssl=False,
    )
    return client.channels_info()["channels"]


def thread_names() -> list[str]:
    return sorted(thread.name for thread in threading.enumerate())


class ServerProcess:
    """``panel-pusher server`` in a child process, to kill with SIGKILL and start again."""

    app_id = "1001"

    key = "listen-test-key"

    secret = "listen-test-secret"

    def __init__(self, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "panel_pusher.cli", "server",
                "--port", str(self.port), "--app-id", self.app_id,
                "--key", self.key, "--secret", self.secret, "--log-level", "WARNING", *self.extra,
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        ready = wait_until(self._healthy, timeout=20, interval=0.05)
        assert ready, f"panel-pusher server did not answer on port {self.port}"
        return self

    def _healthy(self) -> bool:
        try:
            return get_json(self.port, "/health")["status"] == "ok"
        except OSError:
            return False

    def kill(self) -> None:
        """Kill the server by its PID, with no goodbye to its clients."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def status(self) -> dict[str, Any]:
        return get_json(self.port, "/status")


@contextmanager
def panel_server(apps: dict[str, Callable[[], Any]], **kwargs: Any) -> Iterator[int]:
    """Serve Panel apps with ``pn.serve`` in a thread on a free port; yield the port."""
    import panel as pn

    port = free_port()
    options = dict(
        port=port, address="127.0.0.1", threaded=True, show=False,
        websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"],
        check_unused_sessions_milliseconds=100, unused_session_lifetime_milliseconds=100,
    )
    options.update(kwargs)
    thread = pn.serve(apps, **options)
    assert wait_until(lambda: _answers(port)), f"Panel server on port {port} did not start"
    try:
        yield port
    finally:
        thread.stop()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def in_thread(fn: Callable[[], Any], timeout: float = 4 * WAIT_SECONDS) -> Any:
    """Run ``fn`` on a new thread and return its result.

    Some test code (asyncio.run, Bokeh's client sessions, notebook-style
    rendering) needs a thread without a running event loop, and the main
    thread has one while another test module keeps a sync Playwright open.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, name="test-helper")
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the helper thread did not finish"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def open_session(url: str) -> Any:
    """Open a Bokeh client session (a real server session with a websocket) on ``url``."""
    from bokeh.client import pull_session

    return in_thread(lambda: pull_session(url=url))


def close_session(session: Any) -> None:
    def close() -> None:
        # Bokeh's client looks up the current loop of the closing thread.
        asyncio.set_event_loop(asyncio.new_event_loop())
        session.close()

    in_thread(close)


def run_in_session(doc: Any, fn: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    """Run ``fn`` on the session of ``doc`` (its next tick) and return its result."""
    from panel.io.state import set_curdoc

    done = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with set_curdoc(doc):
                outcome["value"] = fn()
        except BaseException as error:
            outcome["error"] = error
        finally:
            done.set()

    doc.add_next_tick_callback(run)
    assert done.wait(timeout), "the session did not run the callback"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def notify_from_other_process(settings: PusherSettings, entity: str, object_id: Any, action: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``panel-pusher notify`` in a child process with PUSHER_* variables for ``settings``."""
    env = {
        **os.environ,
        "PUSHER_APP_ID": settings.app_id, "PUSHER_APP_KEY": settings.key,
        "PUSHER_APP_SECRET": settings.secret, "PUSHER_HOST": settings.host,
        "PUSHER_PORT": str(settings.port), "PUSHER_SCHEME": settings.scheme,
    }
    return subprocess.run(
        [sys.executable, "-m", "panel_pusher.cli", "notify", entity, str(object_id), action, *extra],
        env=env, capture_output=True, text=True, timeout=60,
    )
