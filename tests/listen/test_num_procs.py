"""`panel serve --num-procs 2` with no settings: both workers share one embedded server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import urllib.request

import pytest

from .support import free_port, get_json, wait_until

APP = textwrap.dedent(
    """
    import os
    import pathlib

    from panel_pusher import NotifyListen

    LOG = pathlib.Path(os.environ["LISTEN_LOG"])


    class Room:
        def __init__(self, id):
            self.id = id


    def reload(notification):
        with LOG.open("a") as log:
            log.write(f"call {os.getpid()} {notification.message_id}\\n")


    with LOG.open("a") as log:
        log.write(f"page {os.getpid()}\\n")

    NotifyListen(object=Room(1), actions={"refresh": reload}).servable()
    """
)


def log_lines(path, kind: str) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.startswith(kind)]


@pytest.mark.slow
def test_two_workers_share_embedded_server(tmp_path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    log = tmp_path / "calls.log"
    pusher_port, panel_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PUSHER_", "PANEL_PUSHER_"))}
    env.update(LISTEN_LOG=str(log), PANEL_PUSHER_PORT=str(pusher_port))

    output = (tmp_path / "panel.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", str(app), "--num-procs", "2", "--port", str(panel_port),
         "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{panel_port}"],
        env=env, stdout=output, stderr=subprocess.STDOUT,
        # Its own process group, so that the forked workers end with it.
        start_new_session=True,
    )
    try:
        started = wait_until(lambda: _fetch(panel_port), timeout=90)
        assert started, (tmp_path / "panel.log").read_text()[-2000:]
        pages = 1
        # The kernel spreads connections over the workers; fetch until both served pages.
        while pages < 40 and not (pages >= 6 and len({line[1] for line in log_lines(log, "page")}) == 2):
            assert _fetch(panel_port)
            pages += 1

        workers = {line[1] for line in log_lines(log, "page")}
        connected = wait_until(lambda: _status(pusher_port).get("connections") == len(workers))
        assert connected, (workers, _status(pusher_port), log.read_text())
        assert wait_until(lambda: _status(pusher_port).get("channels") == 1)

        result = subprocess.run(
            [sys.executable, "-m", "panel_pusher.cli", "notify", "Room", "1", "refresh"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert wait_until(lambda: len(log_lines(log, "call")) == pages)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        output.close()

    assert len(workers) == 2
    assert {line[1] for line in log_lines(log, "call")} == workers


def _fetch(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


def _status(port: int) -> dict:
    try:
        return get_json(port, "/status")
    except OSError:
        return {}
