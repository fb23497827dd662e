"""Helpers of the browser tests: free ports, child processes and their environment.

Every process here is started on 127.0.0.1 with a free port and stopped by
its PID (its process group, which the helpers create for it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

APPS_DIR = REPO / "apps"

DOCS_DIR = REPO / "docs"

CHROMIUM = Path("/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Seconds a process may take to return its first HTTP response.
STARTUP_TIMEOUT = 60.0

# Milliseconds a `panel serve` session lives without a connection. It must
# exceed the time a page takes to connect its websocket: Bokeh discards a
# session unused for that long and creates it again when the page connects,
# and Panel 1.9.4 gives the new session stylesheet URLs on cdn.holoviz.org.
SESSION_LIFETIME_MS = 3000

# Milliseconds between Bokeh's checks for unused sessions, so a closed page's
# session ends within SESSION_LIFETIME_MS + SESSION_CHECK_MS.
SESSION_CHECK_MS = 500

# Settings variables stripped from the child environment, so that the apps
# use the test's embedded server and never a real Pusher account.
PUSHER_VARIABLES = (
    "PUSHER_APP_ID",
    "PUSHER_APP_KEY",
    "PUSHER_APP_SECRET",
    "PUSHER_APP_CLUSTER",
    "PUSHER_HOST",
    "PUSHER_PORT",
    "PUSHER_SCHEME",
    "PANEL_PUSHER_CHANNEL_PREFIX",
)

def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = STARTUP_TIMEOUT) -> None:
    """Poll ``url`` until it returns 200; fail if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout

    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)

    raise TimeoutError(f"{url} did not answer within {timeout:g} s")


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a process this module started, and its children, by its PID."""
    if process.poll() is not None:
        return

    # The fixtures start each process in its own session, so its group id is its PID.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def child_environment(**extra: str) -> dict[str, str]:
    """Return os.environ without Pusher settings, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in PUSHER_VARIABLES}
    env.update(extra)
    return env


class PusherServer:
    """A ``panel-pusher server`` subprocess that a test can stop and start again on its port."""

    def __init__(self, port: int, log_path: Path):
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "panel_pusher.cli", "server", "--port", str(self.port), "--log-level", "WARNING"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for_http(f"http://127.0.0.1:{self.port}/health", self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


class PanelServe:
    """A ``panel serve apps/<name>.py`` subprocess on a free port."""

    def __init__(self, app: str, env: dict[str, str], log_path: Path, extra_args: list[str] | None = None):
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/{app}"
        command = [
            sys.executable, "-m", "panel", "serve", str(APPS_DIR / f"{app}.py"),
            "--port", str(self.port),
            "--address", "127.0.0.1",
            "--allow-websocket-origin", f"127.0.0.1:{self.port}",
            "--check-unused-sessions", str(SESSION_CHECK_MS),
            "--unused-session-lifetime", str(SESSION_LIFETIME_MS),
            *(extra_args or []),
        ]
        log = open(log_path, "ab")
        self.process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.log_path = log_path

    def wait_ready(self) -> None:
        wait_for_http(self.url, self.process)

    def stop(self) -> None:
        stop_process(self.process)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def database_environment(work_dir: Path) -> dict[str, str]:
    """Return the variables that put the apps' databases in ``work_dir``."""
    return {
        "PANEL_PUSHER_DATA_DIR": str(work_dir / "data"),
        "PANEL_PUSHER_CHAT_DB": str(work_dir / "chat.sqlite3"),
        "PANEL_PUSHER_DASHBOARD_DB": str(work_dir / "dashboard.sqlite3"),
    }


def local_context(browser, **options):
    """Return a new browser context whose requests to anything but 127.0.0.1 are aborted.

    Panel pages reference a few resources on public CDNs (Bokeh's icon font);
    the tests keep all traffic on this machine. The aborted URLs are listed
    in ``context.blocked_urls``.
    """
    context = browser.new_context(**options)
    blocked: list[str] = []

    def block(route) -> None:
        blocked.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith("http://127.0.0.1:"), block)
    # URLs the page requested outside this machine, for tests to inspect.
    context.blocked_urls = blocked
    return context


def shadow_text(locator) -> str:
    """Return the text of a Panel pane, whose content sits in the element's shadow root."""
    return locator.evaluate("element => (element.shadowRoot || element).textContent")
