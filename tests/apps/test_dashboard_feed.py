"""The feed script as a user runs it: arguments, a missing server, a real server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from dashboard_store import OrderStore

from panel_pusher.server import start_server

FEED = Path(__file__).resolve().parents[2] / "apps" / "dashboard_feed.py"

PUSHER_VARIABLES = (
    "PUSHER_APP_ID", "PUSHER_APP_KEY", "PUSHER_APP_SECRET", "PUSHER_APP_CLUSTER",
    "PUSHER_HOST", "PUSHER_PORT", "PUSHER_SCHEME",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_feed(*args: str, port: int, db: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PUSHER_VARIABLES}
    env["PANEL_PUSHER_PORT"] = str(port)
    return subprocess.run(
        [sys.executable, str(FEED), "--db", str(db), *args],
        env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0"], "must be between 1 and 10000, not 0"),
        (["--count", "10001"], "must be between 1 and 10000"),
        (["--count", "many"], "invalid _positive_count value"),
        (["--interval", "-1"], "must be between 0 and 3600 seconds"),
    ],
)
def test_bad_arguments_rejected(tmp_path, args, message):
    result = run_feed(*args, port=free_port(), db=tmp_path / "orders.sqlite3")

    assert result.returncode == 2
    assert message in result.stderr


def test_missing_server_reported(tmp_path):
    port = free_port()

    result = run_feed("--count", "1", port=port, db=tmp_path / "orders.sqlite3")

    assert result.returncode == 1
    assert f"no panel_pusher server answers on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "orders.sqlite3").exists()


def test_writes_and_notifies(tmp_path):
    db = tmp_path / "orders.sqlite3"

    with start_server(port=0) as server:
        result = run_feed("--count", "3", "--interval", "0", "--user", "cron", port=server.port, db=db)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/status", timeout=5) as response:
            events = json.load(response)["http_events"]

    assert result.returncode == 0, result.stderr
    assert events == 3
    snapshot = OrderStore(db).load()
    assert snapshot.changed_by == "cron"
    assert snapshot.version == 12 + 3
