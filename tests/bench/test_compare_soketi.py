"""Smoke tests of the soketi comparison scripts in ``bench/``.

They run the scripts as a user would, with tiny counts, against embedded
servers on 127.0.0.1. soketi itself is not installed in the test environment,
so the comparison test starts a second embedded server through the
``panel-pusher server`` command as a stand-in for soketi: the test checks the
runner, not soketi's figures.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from panel_pusher.server import start_server

BENCH = Path(__file__).resolve().parents[2] / "bench"

APP = {"app_id": "1001", "key": "bench-key", "secret": "bench-secret"}


def run_load(*arguments: str, timeout: float = 120) -> list[dict]:
    """Run bench/pusher_load.py and return its JSON lines."""
    completed = subprocess.run(
        [sys.executable, str(BENCH / "pusher_load.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return [json.loads(line) for line in completed.stdout.splitlines()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def bench_server():
    server = start_server(host="127.0.0.1", port=0, **APP)
    try:
        yield server
    finally:
        server.stop()


def test_load_latency_and_fanout(bench_server):
    port = str(bench_server.port)

    latency = run_load("--port", port, "--scenario", "latency", "--count", "20")
    fanout = run_load("--port", port, "--scenario", "fanout", "--subscribers", "5,20", "--count", "5")

    assert latency[0]["result"]["lost"] == 0, latency
    assert latency[0]["result"]["trigger_to_receive_ms"]["n"] == 20
    assert [record["subscribers"] for record in fanout] == [5, 20]
    for record in fanout:
        result = record["result"]
        assert result["delivered"] == result["expected"], result
        assert result["incomplete_events"] == 0


def test_load_triggers_counts_accepted(bench_server):
    records = run_load(
        "--port", str(bench_server.port), "--scenario", "triggers", "--callers", "1,2", "--duration", "0.3"
    )

    assert [record["callers"] for record in records] == [1, 2]
    for record in records:
        assert record["result"]["accepted"] > 0, record
        assert record["result"]["non2xx"] == 0
        assert record["result"]["errors"] == 0


def test_load_wrong_secret_reports_failures(bench_server):
    records = run_load(
        "--port", str(bench_server.port), "--secret", "wrong-secret", "--scenario", "triggers",
        "--callers", "1", "--duration", "0.3",
    )

    result = records[0]["result"]
    assert result["accepted"] == 0
    assert result["non2xx"] > 0


def test_load_rejects_non_loopback_host():
    completed = subprocess.run(
        [sys.executable, str(BENCH / "pusher_load.py"), "--host", "192.0.2.1", "--scenario", "latency"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode != 0
    assert "not a loopback address" in completed.stderr


@pytest.mark.slow
def test_compare_runs_with_stand_in(tmp_path):
    stand_in_port = free_port()
    stand_in = (
        f"{sys.executable} -m panel_pusher.cli server --host 127.0.0.1 --port {stand_in_port} "
        f"--app-id {APP['app_id']} --key {APP['key']} --secret {APP['secret']} --log-level WARNING"
    )
    output = tmp_path / "results.jsonl"

    completed = subprocess.run(
        [
            sys.executable, str(BENCH / "compare_soketi.py"),
            "--soketi-cmd", stand_in, "--soketi-port", str(stand_in_port),
            "--rounds", "1", "--latency-count", "20", "--fanout-count", "3", "--trigger-seconds", "0.3",
            "--server-cpu", "", "--client-cpu", "", "--no-uvloop", "--output", str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "trigger to receive, 1 subscriber, p50" in completed.stdout
    assert "warning:" not in completed.stdout, completed.stdout
    records = [json.loads(line) for line in output.read_text().splitlines()]
    targets = {(record["target"], record["scenario"]) for record in records}
    assert ("embedded", "fanout") in targets
    assert ("soketi", "triggers") in targets
    assert ("tornado", "floor") in targets
