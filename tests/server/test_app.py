"""Starting and stopping the server: in-process, on the command line, and its guards."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading

import pytest
import requests

from panel_pusher import cli
from panel_pusher.defaults import DEFAULT_APP_ID, DEFAULT_KEY, DEFAULT_SECRET
from panel_pusher.server import ServerConfig, start_server

from .helpers import WSClient, sdk


def test_start_server_defaults(server):
    assert server.host == "127.0.0.1"
    assert server.port > 0
    assert server.app_id == DEFAULT_APP_ID
    assert server.key == DEFAULT_KEY
    assert server.secret == DEFAULT_SECRET
    assert server.running


def test_health(server):
    response = requests.get(server.url + "/health", timeout=5)
    assert response.json() == {"status": "ok", "server": "panel_pusher", "app_id": server.app_id, "key": server.key}
    assert server.secret not in response.text


def test_status_counts(server, connect):
    client = connect()
    client.subscribe("news")
    sdk(server).trigger("news", "ev", "x")
    client.receive()

    status = requests.get(server.url + "/status", timeout=5).json()
    assert status["connections"] == 1
    assert status["channels"] == 1
    assert status["messages_in"] == 1
    # Handshake, subscription_succeeded and the event.
    assert status["messages_out"] == 3


def test_port_in_use_raises_eaddrinuse(server):
    with pytest.raises(OSError) as caught:
        start_server("127.0.0.1", server.port)
    assert caught.value.errno == errno.EADDRINUSE


def test_default_secret_refused_off_loopback():
    with pytest.raises(ValueError, match="default secret"):
        start_server("0.0.0.0", 0)


def test_non_numeric_app_id_refused():
    with pytest.raises(ValueError, match="digits"):
        start_server("127.0.0.1", 0, app_id="app")


def test_unknown_option_refused():
    with pytest.raises(TypeError):
        start_server("127.0.0.1", 0, no_such_option=1)


def test_own_secret_allowed_with_config():
    config = ServerConfig(secret="s3cret")
    assert config.secret == "s3cret"


def test_stop_is_idempotent_and_closes_port():
    server = start_server("127.0.0.1", 0)
    port = server.port
    server.stop()
    server.stop()

    assert not server.running
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_context_manager_stops():
    with start_server("127.0.0.1", 0) as server:
        assert requests.get(server.url + "/health", timeout=5).status_code == 200
    assert not server.running


def test_blocking_request_from_calling_thread(server):
    # The server has its own loop, so a blocking call from the starter's thread cannot deadlock.
    assert sdk(server).trigger("news", "ev", "x") == {}


def test_start_inside_running_event_loop():
    import asyncio

    async def main():
        with start_server("127.0.0.1", 0) as server:
            return requests.get(server.url + "/health", timeout=5).status_code

    assert asyncio.run(main()) == 200


def test_stop_tells_clients_to_reconnect_later():
    server = start_server("127.0.0.1", 0)
    client = WSClient.connect(server)
    try:
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        error = client.receive()
        close = client.receive()
        stopper.join(10)
    finally:
        client.close()

    assert error["data"]["code"] == 4100
    assert close["code"] == 4100


def test_stop_logged(caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="panel_pusher.server"):
        server = start_server("127.0.0.1", 0, app_id="42")
        server.stop()

    messages = [record.getMessage() for record in caplog.records]
    assert f"panel_pusher server listening on 127.0.0.1:{server.port} (app id 42)" in messages
    assert any("stopped" in m for m in messages)


def test_cli_status(server, capsys):
    assert cli.main(["status", "--port", str(server.port)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["connections"] == 0


def test_cli_status_without_server(capsys):
    free = start_server("127.0.0.1", 0)
    port = free.port
    free.stop()
    assert cli.main(["status", "--port", str(port), "--timeout", "2"]) == 1
    assert "no response from a panel_pusher server" in capsys.readouterr().err


def test_cli_server_refuses_public_host_with_default_secret(capsys):
    assert cli.main(["server", "--host", "0.0.0.0", "--port", "0"]) == 1
    assert "default secret" in capsys.readouterr().err


@pytest.mark.parametrize("port", [-1, 65536, 70000])
def test_port_out_of_range_rejected(port):
    with pytest.raises(ValueError, match="use a port number from 1 to 65535"):
        start_server("127.0.0.1", port)


@pytest.mark.parametrize("port", ["-1", "65536"])
def test_cli_server_port_out_of_range(port, capsys):
    assert cli.main(["server", "--port", port]) == 1
    assert f"port {port} is invalid" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["server", "--log-level", "LOUD"], "invalid choice: 'LOUD'"),
        (["status", "--timeout", "-1"], "timeout must be greater than 0 seconds"),
        (["status", "--timeout", "soon"], "invalid number of seconds"),
    ],
)
def test_cli_bad_option_is_usage_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_port_defaults_to_environment(monkeypatch):
    monkeypatch.setenv("PANEL_PUSHER_PORT", "6123")

    args = cli.build_parser().parse_args(["status"])

    assert args.port == 6123


@pytest.mark.slow
def test_cli_server_runs_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "panel_pusher.cli", "server", "--port", "0", "--app-id", "7",
         "--key", "k", "--secret", "s"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stderr.readline()
        port = int(re.search(r":(\d+) \(app id 7\)", line).group(1))
        health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        assert health["key"] == "k"

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def test_stop_drops_clients_that_ignore_close(monkeypatch):
    from panel_pusher.server import app

    monkeypatch.setattr(app, "CLOSE_GRACE_SECONDS", 0.2)
    server = start_server("127.0.0.1", 0)
    sock = __import__("socket").create_connection(("127.0.0.1", server.port))
    try:
        sock.sendall(
            b"GET /app/" + server.key.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 101")

        # This client never replies to the close frame, so stop() must drop it.
        server.stop(timeout=5)
        assert not server.running

        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        assert b'"code":4100' in received
    finally:
        sock.close()
