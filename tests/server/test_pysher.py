"""Conformance with pysher 1.0.8, the Python websocket client, including its quirks."""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Iterator

import pysher
import pytest

from .helpers import RECEIVE_TIMEOUT, sdk, wait_for


class PysherClient:
    """pysher connected to a server, with every bound event copied to a queue."""

    def __init__(self, server, *, user_data=None, channels=(), auto_sub=False, reconnect_interval=1):
        self.events: queue.Queue = queue.Queue()
        self.connected = threading.Event()
        self.channels = list(channels)
        self.pusher = pysher.Pusher(
            server.key, custom_host="127.0.0.1", port=server.port, secure=False, secret=server.secret,
            user_data=user_data or {}, auto_sub=auto_sub, reconnect_interval=reconnect_interval,
            log_level=logging.WARNING,
        )
        self.pusher.connection.bind("pusher:connection_established", self._on_connected)
        self.pusher.connection.bind("pusher:error", lambda data: self.events.put(("pusher:error", None, data)))
        self.pusher.connect()

    def _on_connected(self, data) -> None:
        for name in self.channels:
            self.subscribe(name)
        self.connected.set()

    def subscribe(self, name: str) -> None:
        channel = self.pusher.subscribe(name)
        for event in ("pusher_internal:subscription_succeeded", "ev", "pusher_internal:member_added",
                      "pusher_internal:member_removed", "client-msg"):
            channel.bind(event, lambda data, event=event, name=name: self.events.put((event, name, data)))

    def next(self, event: str, timeout: float = RECEIVE_TIMEOUT):
        while True:
            got = self.events.get(timeout=timeout)
            if got[0] == event:
                return got

    def close(self) -> None:
        self.pusher.disconnect(timeout=2)


@pytest.fixture
def pysher_client(server) -> Iterator:
    clients: list[PysherClient] = []

    def make(**kwargs) -> PysherClient:
        client = PysherClient(server, **kwargs)
        clients.append(client)
        assert client.connected.wait(RECEIVE_TIMEOUT)
        return client

    yield make

    for client in clients:
        client.close()


@pytest.mark.parametrize("channel", ["news", "private-room", "cache-news"])
def test_pysher_receives_trigger(server, pysher_client, channel):
    client = pysher_client(channels=[channel])
    client.next("pusher_internal:subscription_succeeded")

    sdk(server).trigger(channel, "ev", {"n": 1})

    assert client.next("ev") == ("ev", channel, '{"n": 1}')


def test_pysher_presence(server, pysher_client):
    ann = pysher_client(channels=["presence-room"], user_data={"user_id": "ann", "user_info": {"name": "Ann"}})
    ann.next("pusher_internal:subscription_succeeded")
    bob = pysher_client(channels=["presence-room"], user_data={"user_id": "bob"})
    _, _, data = bob.next("pusher_internal:subscription_succeeded")

    assert '"count":2' in data
    assert ann.next("pusher_internal:member_added")[2] == '{"user_id":"bob","user_info":null}'

    sdk(server).trigger("presence-room", "ev", "hello")
    assert ann.next("ev")[2] == "hello"
    assert bob.next("ev")[2] == "hello"

    bob.close()
    assert ann.next("pusher_internal:member_removed")[2] == '{"user_id":"bob"}'


def test_pysher_client_event(server, pysher_client):
    sender = pysher_client(channels=["private-chat"])
    receiver = pysher_client(channels=["private-chat"])
    sender.next("pusher_internal:subscription_succeeded")
    receiver.next("pusher_internal:subscription_succeeded")

    sender.pusher.channels["private-chat"].trigger("client-msg", {"text": "hi"})

    assert receiver.next("client-msg")[2] == {"text": "hi"}


def test_pysher_auto_sub_reconnect_stays_connected(server, pysher_client):
    # On reconnect pysher resends private subscriptions with no auth. The
    # server must reply with a null code, which pysher ignores.
    client = pysher_client(auto_sub=True, channels=["private-room"])
    client.next("pusher_internal:subscription_succeeded")
    client.connected.clear()

    # Drop the TCP connection under pysher, as a network failure would.
    client.pusher.connection.socket.sock.sock.shutdown(socket.SHUT_RDWR)
    assert client.connected.wait(10)
    error = client.next("pusher:error")
    assert error[2]["code"] is None

    client.next("pusher_internal:subscription_succeeded")
    sdk(server).trigger("private-room", "ev", "after")
    assert client.next("ev")[2] == "after"


def test_pysher_reconnects_after_stop(make_server):
    # Shutdown sends code 4100: pysher backs off and keeps its reconnect interval.
    server = make_server()
    client = PysherClient(server, channels=["news"], reconnect_interval=1)
    try:
        assert client.connected.wait(RECEIVE_TIMEOUT)
        server.stop()
        error = client.next("pusher:error")
        assert error[2]["code"] == 4100
        assert wait_for(lambda: client.pusher.connection.state != "connected")
        assert client.pusher.connection.reconnect_interval == 1
    finally:
        client.close()
