"""Test clients for the embedded server: a raw protocol-7 websocket client and SDK helpers."""

from __future__ import annotations

import json
import time
from typing import Any

import pusher
import websocket

from panel_pusher import signatures
from panel_pusher.server import EmbeddedServer

# Seconds a test waits for one frame before it fails instead of hanging.
RECEIVE_TIMEOUT = 5.0


class WSClient:
    """A minimal Pusher client over websocket-client, driven step by step from a test."""

    def __init__(self, server: EmbeddedServer, *, key: str | None = None, query: str = "protocol=7") -> None:
        self.server = server
        url = f"ws://127.0.0.1:{server.port}/app/{key or server.key}?{query}"
        self.ws = websocket.create_connection(url, timeout=RECEIVE_TIMEOUT)
        self.socket_id = ""

    @classmethod
    def connect(cls, server: EmbeddedServer, **kwargs: Any) -> WSClient:
        """Connect and read the handshake."""
        client = cls(server, **kwargs)
        handshake = client.receive()
        assert handshake["event"] == "pusher:connection_established", handshake
        client.socket_id = json.loads(handshake["data"])["socket_id"]
        return client

    def send(self, event: str, data: Any = None, channel: str | None = None) -> None:
        frame: dict[str, Any] = {"event": event, "data": {} if data is None else data}
        if channel is not None:
            frame["channel"] = channel
        self.ws.send(json.dumps(frame))

    def send_raw(self, text: str | bytes) -> None:
        if isinstance(text, bytes):
            self.ws.send_binary(text)
        else:
            self.ws.send(text)

    def receive(self, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        """Return the next frame, decoded."""
        self.ws.settimeout(timeout)
        opcode, payload = self.ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            return {"event": "<close>", "code": code}
        return json.loads(payload)

    def receive_until(self, event: str, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        """Return the first frame with ``event``, skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.receive(max(0.05, deadline - time.monotonic()))
            if frame["event"] == event:
                return frame

    def expect_silence(self, timeout: float = 0.3) -> None:
        """Assert that no frame arrives within ``timeout`` seconds."""
        self.ws.settimeout(timeout)
        try:
            frame = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return
        raise AssertionError(f"unexpected frame {frame!r}")

    def subscribe(self, channel: str, *, auth: str | None = None, channel_data: str | None = None,
                  sign: bool = True) -> dict[str, Any]:
        """Subscribe, signing private and presence channels, and return the reply frame."""
        data: dict[str, Any] = {"channel": channel}
        if channel_data is not None:
            data["channel_data"] = channel_data
        if auth is None and sign and channel.startswith(("private-", "presence-")):
            auth = signatures.channel_auth(
                self.server.key, self.server.secret, self.socket_id, channel, channel_data
            )
        if auth is not None:
            data["auth"] = auth
        self.send("pusher:subscribe", data)
        return self.receive()

    def sign_in(self, user_id: str) -> dict[str, Any]:
        user_data = json.dumps({"id": user_id})
        auth = signatures.user_auth(self.server.key, self.server.secret, self.socket_id, user_data)
        self.send("pusher:signin", {"auth": auth, "user_data": user_data})
        return self.receive()

    def close(self) -> None:
        self.ws.close()


def presence_data(user_id: Any, **info: Any) -> str:
    """Return channel_data as pysher builds it (default json separators)."""
    return json.dumps({"user_id": user_id, "user_info": info or None})


def sdk(server: EmbeddedServer, **kwargs: Any) -> pusher.Pusher:
    """Return the official HTTP SDK pointed at ``server``."""
    return pusher.Pusher(
        app_id=server.app_id, key=server.key, secret=server.secret,
        host="127.0.0.1", port=server.port, ssl=False, **kwargs,
    )


def wait_for(condition: Any, timeout: float = RECEIVE_TIMEOUT, interval: float = 0.01) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(interval)
