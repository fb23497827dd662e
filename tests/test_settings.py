"""PusherSettings: environment parsing, validation and endpoint resolution."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from panel_pusher.defaults import DEFAULT_KEY, DEFAULT_PORT
from panel_pusher.endpoint import embedded_endpoint, resolve_endpoint
from panel_pusher.server import start_server
from panel_pusher.settings import PusherSettings, get_settings, set_settings

FULL_ENV = {
    "PUSHER_APP_ID": "1234",
    "PUSHER_APP_KEY": "abc",
    "PUSHER_APP_SECRET": "s3cret",
    "PUSHER_HOST": "127.0.0.1",
    "PUSHER_PORT": "6002",
    "PUSHER_SCHEME": "http",
}


def test_empty_environment_is_embedded():
    settings = PusherSettings.from_env({})

    assert settings.embedded
    assert settings.embedded_port == DEFAULT_PORT
    assert settings.channel_prefix == ""


def test_embedded_port_from_environment():
    settings = PusherSettings.from_env({"PANEL_PUSHER_PORT": "7001"})

    assert settings.embedded
    assert settings.embedded_port == 7001


def test_full_environment_is_configured():
    settings = PusherSettings.from_env({**FULL_ENV, "PANEL_PUSHER_CHANNEL_PREFIX": "shop-"})

    assert not settings.embedded
    assert (settings.app_id, settings.key, settings.secret) == ("1234", "abc", "s3cret")
    assert (settings.host, settings.port, settings.scheme) == ("127.0.0.1", 6002, "http")
    assert settings.channel_prefix == "shop-"


def test_empty_variables_count_as_unset():
    settings = PusherSettings.from_env({"PUSHER_APP_KEY": "", "PUSHER_HOST": "  "})

    assert settings.embedded


@pytest.mark.parametrize(
    ("env", "named", "form"),
    [
        ({"PUSHER_APP_KEY": "abc"}, "PUSHER_APP_SECRET", "together"),
        ({"PUSHER_APP_KEY": "abc", "PUSHER_APP_SECRET": "s"}, "PUSHER_APP_ID", "together"),
        ({**FULL_ENV, "PUSHER_APP_ID": "app-1"}, "PUSHER_APP_ID", "digits only"),
        ({**FULL_ENV, "PUSHER_SCHEME": "ftp"}, "PUSHER_SCHEME", "'https' or 'http'"),
        ({**FULL_ENV, "PUSHER_PORT": "http"}, "PUSHER_PORT", "port number"),
        ({**FULL_ENV, "PUSHER_PORT": "70000"}, "PUSHER_PORT", "port number"),
        ({"PANEL_PUSHER_PORT": "-1"}, "PANEL_PUSHER_PORT", "port number"),
        ({"PANEL_PUSHER_CHANNEL_PREFIX": "my app"}, "PANEL_PUSHER_CHANNEL_PREFIX", "letters, digits"),
        ({"PUSHER_PORT": "6001"}, "PUSHER_PORT", "no server is"),
        ({**FULL_ENV, "PUSHER_APP_CLUSTER": "eu/../x"}, "PUSHER_APP_CLUSTER", "for example 'eu'"),
    ],
)
def test_invalid_environment_names_variable(env, named, form):
    with pytest.raises(ValueError) as raised:
        PusherSettings.from_env(env)

    assert named in str(raised.value)
    assert form in str(raised.value)


def test_invalid_constructor_names_parameter():
    with pytest.raises(ValueError, match="app_id='x' is invalid"):
        PusherSettings(app_id="x", key="k", secret="s", host="h")


def test_unknown_scheme_rejected_by_param():
    with pytest.raises(ValueError, match="scheme"):
        PusherSettings(app_id="1", key="k", secret="s", host="h", scheme="ftp")


def test_repr_hides_secret():
    settings = PusherSettings(app_id="1", key="k", secret="very-secret", host="h")

    assert "very-secret" not in repr(settings)
    assert "very-secret" not in str(settings)
    assert "secret='***'" not in repr(PusherSettings())


def test_default_settings_read_once(monkeypatch):
    monkeypatch.setenv("PANEL_PUSHER_PORT", "7005")
    set_settings(None)
    try:
        assert get_settings().embedded_port == 7005
        monkeypatch.setenv("PANEL_PUSHER_PORT", "7006")
        assert get_settings().embedded_port == 7005
    finally:
        set_settings(None)


def test_set_settings_rejects_other_types():
    with pytest.raises(TypeError, match="PusherSettings"):
        set_settings({"key": "k"})


def test_resolve_cluster_hosts():
    endpoint = resolve_endpoint(PusherSettings(app_id="1", key="k", secret="hidden-secret", cluster="eu"))

    assert endpoint.api_host == "api-eu.pusher.com"
    assert endpoint.ws_host == "ws-eu.pusher.com"
    assert (endpoint.scheme, endpoint.port, endpoint.secure) == ("https", 443, True)
    assert "hidden-secret" not in repr(endpoint)


def test_resolve_host_with_http_default_port():
    endpoint = resolve_endpoint(PusherSettings(app_id="1", key="k", secret="s", host="example.test", scheme="http"))

    assert (endpoint.api_host, endpoint.ws_host, endpoint.port) == ("example.test", "example.test", 80)
    assert not endpoint.embedded


def test_embedded_finds_running_server():
    with start_server("127.0.0.1", 0, key="found-key") as server:
        endpoint = embedded_endpoint(server.port, refresh=True)

    assert endpoint.embedded
    assert endpoint.port == server.port
    assert endpoint.key == "found-key"


class _NotPusher(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"hello": "world"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_embedded_port_held_by_other_program():
    other = HTTPServer(("127.0.0.1", 0), _NotPusher)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(RuntimeError, match="not a panel_pusher server"):
            embedded_endpoint(other.server_address[1], refresh=True)
    finally:
        other.shutdown()
        other.server_close()


RACER = textwrap.dedent(
    """
    import json, sys, time
    from panel_pusher import endpoint
    resolved = endpoint.embedded_endpoint(int(sys.argv[1]))
    print(json.dumps({"started": bool(endpoint._started), "key": resolved.key, "port": resolved.port}), flush=True)
    time.sleep(3)
    """
)


def test_two_processes_share_one_embedded_server():
    """Two processes that look for the embedded server at once end up on one server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, str(port)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        answers = [json.loads(racer.stdout.readline()) for racer in racers]
    finally:
        for racer in racers:
            racer.wait(30)

    assert sorted(answer["started"] for answer in answers) == [False, True]
    assert [answer["port"] for answer in answers] == [port, port]
    assert [answer["key"] for answer in answers] == [DEFAULT_KEY, DEFAULT_KEY]
