"""Webhooks from a real server to a receiver on 127.0.0.1, checked with the SDK's validate_webhook."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from panel_pusher.server import webhooks

from .helpers import WSClient, presence_data, sdk, wait_for


class Receiver(http.server.ThreadingHTTPServer):
    """Collects webhook POSTs and replies with ``status`` (200 unless a test changes it)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks"

    def events(self) -> list[dict]:
        return [event for _, body in self.requests for event in json.loads(body)["events"]]


class ReceiverHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((dict(self.headers), body))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_webhooks_validate_with_sdk(make_server, receiver):
    server = make_server(webhook_url=receiver.url)
    client = WSClient.connect(server)
    client.subscribe("presence-room", channel_data=presence_data("u1"))
    client.close()

    assert wait_for(lambda: {"channel_vacated", "member_removed"} <= {e["name"] for e in receiver.events()})
    for headers, body in receiver.requests:
        validated = sdk(server).validate_webhook(headers["X-Pusher-Key"], headers["X-Pusher-Signature"], body)
        assert validated is not None
        assert validated["time_ms"] > 10**12

    names = [event["name"] for event in receiver.events()]
    assert names == ["channel_occupied", "member_added", "member_removed", "channel_vacated"]
    assert receiver.events()[1] == {"name": "member_added", "channel": "presence-room", "user_id": "u1"}


def test_client_event_webhook(make_server, receiver):
    server = make_server(webhook_url=receiver.url)
    sender = WSClient.connect(server)
    try:
        sender.subscribe("presence-chat", channel_data=presence_data("ann"))
        sender.send("client-typing", {"a": 1}, channel="presence-chat")
        assert wait_for(lambda: any(e["name"] == "client_event" for e in receiver.events()))
    finally:
        sender.close()

    hook = next(e for e in receiver.events() if e["name"] == "client_event")
    assert hook == {
        "name": "client_event",
        "channel": "presence-chat",
        "event": "client-typing",
        "data": '{"a": 1}',
        "socket_id": sender.socket_id,
        "user_id": "ann",
    }


def test_cache_miss_webhook(make_server, receiver):
    server = make_server(webhook_url=receiver.url)
    client = WSClient.connect(server)
    try:
        client.subscribe("cache-x")
        assert wait_for(lambda: any(e["name"] == "cache_miss" for e in receiver.events()))
    finally:
        client.close()


def test_tampered_webhook_fails_validation(make_server, receiver):
    server = make_server(webhook_url=receiver.url)
    client = WSClient.connect(server)
    client.subscribe("news")
    client.close()
    assert wait_for(lambda: receiver.requests)

    headers, body = receiver.requests[0]
    tampered = body.replace(b"news", b"fake")
    assert sdk(server).validate_webhook(headers["X-Pusher-Key"], headers["X-Pusher-Signature"], tampered) is None


def test_failed_webhook_retried(make_server, receiver, monkeypatch):
    monkeypatch.setattr(webhooks, "RETRY_DELAYS", (0.05, 0.05))
    receiver.status = 500
    server = make_server(webhook_url=receiver.url)
    client = WSClient.connect(server)
    client.subscribe("news")

    assert wait_for(lambda: len(receiver.requests) >= 3)
    client.close()
    assert len({body for _, body in receiver.requests[:3]}) == 1


def test_unreachable_webhook_does_not_stop_delivery(make_server, monkeypatch):
    monkeypatch.setattr(webhooks, "RETRY_DELAYS", (0.05,))
    # Port 9 on loopback: nothing listens there in the test environment.
    server = make_server(webhook_url="http://127.0.0.1:9/hooks")
    client = WSClient.connect(server)
    try:
        client.subscribe("news")
        sdk(server).trigger("news", "ev", "x")
        assert client.receive()["data"] == "x"
    finally:
        client.close()
