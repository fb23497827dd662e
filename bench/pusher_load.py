"""Load client for any Pusher-protocol server on loopback.

Scenarios, each bounded by a count and by ``--max-seconds`` per run:

* ``latency``: one subscriber, ``--count`` sequential HTTP triggers; time from
  just before the POST to the event's arrival on the websocket;
* ``fanout``: N subscribers (``--subscribers``) on one public channel,
  ``--count`` sequential triggers; time until all N received each event;
* ``triggers``: HTTP triggers accepted per second with C concurrent callers
  (``--callers``) for ``--duration`` seconds;
* ``floor``: the same client against a plain Tornado server started as a
  child process: websocket echo and HTTP POST round trips, POST throughput,
  and an HTTP POST that a Tornado handler writes to N websockets.

Each run prints one JSON line with a ``result`` object. With ``--server-pid``
the result includes the server's CPU time per trigger or per delivered
message, read from ``/proc``. The command line and the result fields follow
a server-agnostic benchmark harness, ``pusher_bench.py``, so that
``compare_soketi.py`` can drive either. Only loopback addresses are accepted.

Example::

    python bench/pusher_load.py --port 6001 --scenario fanout --subscribers 1000 --count 200
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import ipaddress
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from panel_pusher import signatures

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Seconds allowed for one connect, response or event before the run fails.
WAIT_SECONDS = 10.0

# Untimed triggers or samples before each measurement.
WARMUP = 50

# Sockets opened at once while building the fan-out audience.
CONNECT_BATCH = 64

BASELINE_SERVER = """
import os, sys
import tornado.httpserver, tornado.ioloop, tornado.netutil, tornado.web, tornado.websocket

if sys.argv[1]:
    os.sched_setaffinity(0, {int(cpu) for cpu in sys.argv[1].split(",")})
listeners = set()

class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message)

class Listen(tornado.websocket.WebSocketHandler):
    def open(self):
        listeners.add(self)
    def on_close(self):
        listeners.discard(self)

class Post(tornado.web.RequestHandler):
    def post(self):
        self.set_header("Content-Type", "application/json")
        self.write(b"{}")

class Broadcast(tornado.web.RequestHandler):
    def post(self):
        body = self.request.body.decode()
        for listener in list(listeners):
            try:
                listener.write_message(body)
            except tornado.websocket.WebSocketClosedError:
                pass
        self.set_header("Content-Type", "application/json")
        self.write(b"{}")

app = tornado.web.Application([("/echo", Echo), ("/listen", Listen), ("/post", Post), ("/broadcast", Broadcast)])
sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
tornado.httpserver.HTTPServer(app).add_sockets(sockets)
print(sockets[0].getsockname()[1], flush=True)
tornado.ioloop.IOLoop.current().start()
"""


def require_loopback(host: str) -> str:
    """Return the numeric address of host, or exit when it is not a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        sys.exit(f"cannot resolve host {host!r}: {exc}")

    address = infos[0][4][0]
    if not ipaddress.ip_address(address).is_loopback:
        sys.exit(f"host {host!r} is {address}, not a loopback address; this client only targets 127.0.0.0/8 or ::1")
    return address


def cpu_seconds(pid: int) -> float | None:
    """Return user plus system CPU seconds of a local process, or None without one."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def distribution_ms(samples: list[float]) -> dict[str, float]:
    """Summarise samples in seconds as milliseconds: count, p50, p90, p99, mean."""
    if not samples:
        return {"n": 0}

    ordered = sorted(sample * 1000.0 for sample in samples)

    def percentile(fraction: float) -> float:
        position = (len(ordered) - 1) * fraction
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {
        "n": len(ordered),
        "p50": round(percentile(0.50), 4),
        "p90": round(percentile(0.90), 4),
        "p99": round(percentile(0.99), 4),
        "mean": round(statistics.fmean(ordered), 4),
    }


class CpuMeter:
    """CPU time of this client and of the server between ``start`` and ``stop``."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def start(self) -> None:
        self.wall = time.perf_counter()
        self.client = time.process_time()
        self.server = cpu_seconds(self.server_pid)

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        client = time.process_time() - self.client
        result = {"client_cpu_s": round(client, 3), "client_cpu_util": round(client / wall, 3)}

        server_now = cpu_seconds(self.server_pid)
        if self.server is not None and server_now is not None:
            result["server_cpu_s"] = round(server_now - self.server, 3)
            result["server_cpu_util"] = round((server_now - self.server) / wall, 3)
        return result


class WebSocketClient(asyncio.Protocol):
    """Client side of RFC 6455 without extensions or fragmented messages: text frames in and out."""

    def __init__(self, host: str, path: str, on_text: Callable[[WebSocketClient, bytes, float], None]) -> None:
        self.host = host
        self.path = path
        self.on_text = on_text
        self.key = base64.b64encode(os.urandom(16))
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.handshaken = False
        self.state: Any = None  # free slot for the scenario

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.transport.write(request.encode())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection closed during the handshake: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data

        if not self.handshaken and not self._finish_handshake():
            return

        self._read_frames(now)

    def _finish_handshake(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False

        head = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[: end + 4]
        accept = base64.b64encode(hashlib.sha1(self.key + WEBSOCKET_GUID).digest()).decode()
        if not head.startswith("HTTP/1.1 101") or accept not in head:
            self.opened.set_exception(ConnectionError(f"websocket handshake failed: {head.splitlines()[0]!r}"))
            self.close()
            return False

        self.handshaken = True
        self.opened.set_result(None)
        return True

    def _read_frames(self, now: float) -> None:
        buffer = self.buffer
        position = 0
        while len(buffer) - position >= 2:
            opcode = buffer[position] & 0x0F
            length = buffer[position + 1] & 0x7F
            header = 2
            if length == 126:
                if len(buffer) - position < 4:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 4], "big")
                header = 4
            elif length == 127:
                if len(buffer) - position < 10:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 10], "big")
                header = 10

            end = position + header + length
            if end > len(buffer):
                break
            payload = bytes(buffer[position + header : end])
            position = end

            if opcode == 0x1:
                self.on_text(self, payload, now)
            elif opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode == 0x8:
                self.close()
                break

        del buffer[:position]

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return

        length = len(payload)
        if length < 126:
            header = bytes((0x80 | opcode, 0x80 | length))
        elif length < 65536:
            header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")

        mask = os.urandom(4)
        repeated = (mask * (length // 4 + 1))[:length]
        masked = (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(length, "little")
        self.transport.write(header + mask + masked)

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


async def open_websocket(address: str, port: int, path: str, on_text: Callable[[WebSocketClient, bytes, float], None]) -> WebSocketClient:
    """Open a websocket to address:port and wait for the handshake."""
    loop = asyncio.get_running_loop()
    host = f"{address}:{port}"
    _, client = await asyncio.wait_for(loop.create_connection(lambda: WebSocketClient(host, path, on_text), address, port), WAIT_SECONDS)
    await asyncio.wait_for(client.opened, WAIT_SECONDS)
    return client


class HttpConnection:
    """HTTP/1.1 client that keeps the connection open and reconnects when the server closes it.

    soketi 1.6.1 sends ``Connection: close`` with every API response, so
    ``connects`` counts the TCP connects made.
    """

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.connects = 0

    async def post(self, target: str, body: bytes) -> tuple[int, bytes]:
        """Send one POST and return the status and body."""
        return await asyncio.wait_for(self._post(target, body), WAIT_SECONDS)

    async def _post(self, target: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.address, self.port)
            self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connects += 1

        head = (
            f"POST {target} HTTP/1.1\r\nHost: {self.address}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode("latin-1") + body)
        assert self.reader is not None

        response_head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(response_head.split(None, 2)[1])
        headers = {}
        for line in response_head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()

        if b"content-length" in headers:
            response_body = await self.reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding") == b"chunked":
            response_body = await self._read_chunked()
        else:
            response_body = await self.reader.read()
            headers[b"connection"] = b"close"

        if headers.get(b"connection") == b"close":
            self.close()
        return status, response_body

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        chunks = []
        while True:
            size = int((await self.reader.readline()).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return b"".join(chunks)
            chunks.append(chunk[:-2])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def effective_status(status: int, body: bytes) -> int:
    """Return the status, treating a 2xx reply whose JSON body has an ``error`` key as a failure.

    soketi 1.6.1 reports some API errors with HTTP 200 and ``{"error": ..., "code": 401}``.
    """
    if status // 100 != 2 or b'"error"' not in body:
        return status
    try:
        parsed = json.loads(body)
    except ValueError:
        return status
    if isinstance(parsed, dict) and "error" in parsed:
        return int(parsed.get("code") or 400)
    return status


class Triggerer:
    """Signs and sends ``POST /apps/{id}/events`` requests on one connection."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.http = HttpConnection(args.address, args.port)
        self.path = f"/apps/{args.app_id}/events"

    async def trigger(self, channel: str, event: str, data: dict[str, Any]) -> int:
        body = json.dumps({"name": event, "channels": [channel], "data": json.dumps(data)}).encode()
        params = {
            "auth_key": self.args.key,
            "auth_timestamp": str(int(time.time())),
            "auth_version": "1.0",
            "body_md5": signatures.body_md5(body),
        }
        signature = signatures.sign(self.args.secret, signatures.request_string("POST", self.path, params))
        query = "&".join(f"{name}={value}" for name, value in sorted(params.items()))
        status, response = await self.http.post(f"{self.path}?{query}&auth_signature={signature}", body)
        return effective_status(status, response)


class PusherAudience:
    """Pusher websocket clients that report each channel event by its sequence number.

    Events are named ``b-<seq>``. ``on_event(seq, receive_time)`` is called once
    per delivered event per socket.
    """

    def __init__(self, args: argparse.Namespace, on_event: Callable[[int, float], None]) -> None:
        self.args = args
        self.on_event = on_event
        self.path = f"/app/{args.key}?protocol=7&client=panel-pusher-bench&version=0.1"
        self.sockets: list[WebSocketClient] = []

    def _on_text(self, client: WebSocketClient, payload: bytes, now: float) -> None:
        message = json.loads(payload)
        event = message.get("event", "")
        waiter = client.state

        if event == "pusher:connection_established" or event == "pusher_internal:subscription_succeeded":
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
        elif event == "pusher:ping":
            client.send_text('{"event":"pusher:pong","data":{}}')
        elif event in ("pusher:error", "pusher:subscription_error"):
            if waiter is not None and not waiter.done():
                waiter.set_exception(RuntimeError(f"server sent {event}: {message.get('data')!r}"))
        elif event.startswith("b-"):
            self.on_event(int(event[2:]), now)

    async def _join(self, channel: str) -> None:
        loop = asyncio.get_running_loop()
        established = loop.create_future()

        def on_text(client: WebSocketClient, payload: bytes, now: float) -> None:
            if client.state is None:
                client.state = established
            self._on_text(client, payload, now)

        client = await open_websocket(self.args.address, self.args.port, self.path, on_text)
        client.state = established
        await asyncio.wait_for(established, WAIT_SECONDS)

        client.state = loop.create_future()
        client.send_text(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
        await asyncio.wait_for(client.state, WAIT_SECONDS)
        self.sockets.append(client)

    async def join(self, channel: str, count: int) -> float:
        """Connect count sockets and subscribe each to channel; return the seconds taken."""
        start = time.perf_counter()
        for first in range(0, count, CONNECT_BATCH):
            await asyncio.gather(*(self._join(channel) for _ in range(min(CONNECT_BATCH, count - first))))
        return time.perf_counter() - start

    def close(self) -> None:
        for client in self.sockets:
            client.close()
        self.sockets = []


def payload(seq: int) -> dict[str, Any]:
    return {"seq": seq, "pad": "x" * 64}


async def scenario_latency(args: argparse.Namespace) -> dict[str, Any]:
    """Trigger-to-receive time with one subscriber."""
    waiters: dict[int, asyncio.Future[float]] = {}

    def on_event(seq: int, now: float) -> None:
        waiter = waiters.get(seq)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    audience = PusherAudience(args, on_event)
    channel = f"bench-latency-{random.randrange(1 << 30)}"
    await audience.join(channel, 1)
    triggerer = Triggerer(args)
    deadline = time.perf_counter() + args.max_seconds
    samples: list[float] = []
    lost = 0
    failed = 0
    loop = asyncio.get_running_loop()
    meter = CpuMeter(args.server_pid)
    total = WARMUP + args.count

    meter.start()
    gc.disable()
    try:
        for seq in range(total):
            if seq == WARMUP:
                meter.start()
            if time.perf_counter() > deadline:
                break

            waiter = waiters[seq] = loop.create_future()
            start = time.perf_counter()
            if await triggerer.trigger(channel, f"b-{seq}", payload(seq)) // 100 != 2:
                failed += 1
            try:
                received = await asyncio.wait_for(waiter, WAIT_SECONDS)
            except asyncio.TimeoutError:
                lost += 1
                continue
            finally:
                del waiters[seq]
            if seq >= WARMUP:
                samples.append(received - start)
        cpu = meter.stop()
    finally:
        gc.enable()
        triggerer.http.close()
        audience.close()

    result: dict[str, Any] = {"count": args.count, "lost": lost, "http_non2xx": failed, "trigger_to_receive_ms": distribution_ms(samples)}
    result.update(cpu)
    if "server_cpu_s" in result and samples:
        result["server_cpu_us_per_trigger"] = round(result["server_cpu_s"] / len(samples) * 1e6, 1)
    return result


async def scenario_fanout(args: argparse.Namespace, subscribers: int) -> dict[str, Any]:
    """Time for each event to reach all subscribers, and server CPU per delivered message."""
    total = WARMUP + args.count
    received = [0] * total
    last = [0.0] * total
    done: dict[int, asyncio.Future[None]] = {}

    def on_event(seq: int, now: float) -> None:
        received[seq] += 1
        last[seq] = now
        if received[seq] == subscribers and seq in done and not done[seq].done():
            done[seq].set_result(None)

    audience = PusherAudience(args, on_event)
    channel = f"bench-fanout-{random.randrange(1 << 30)}"
    join_seconds = await audience.join(channel, subscribers)
    triggerer = Triggerer(args)
    deadline = time.perf_counter() + args.max_seconds
    samples: list[float] = []
    incomplete = 0
    failed = 0
    loop = asyncio.get_running_loop()
    meter = CpuMeter(args.server_pid)

    meter.start()
    gc.disable()
    try:
        for seq in range(total):
            if seq == WARMUP:
                meter.start()
            if time.perf_counter() > deadline:
                break

            done[seq] = loop.create_future()
            start = time.perf_counter()
            if await triggerer.trigger(channel, f"b-{seq}", payload(seq)) // 100 != 2:
                failed += 1
            try:
                await asyncio.wait_for(done[seq], WAIT_SECONDS)
            except asyncio.TimeoutError:
                incomplete += 1
                continue
            if seq >= WARMUP:
                samples.append(last[seq] - start)
        cpu = meter.stop()
    finally:
        gc.enable()
        triggerer.http.close()
        audience.close()

    delivered = sum(received[WARMUP:])
    result: dict[str, Any] = {
        "subscribers": subscribers,
        "count": args.count,
        "join_s": round(join_seconds, 3),
        "all_received_ms": distribution_ms(samples),
        "delivered": delivered,
        "expected": subscribers * args.count,
        "incomplete_events": incomplete,
        "http_non2xx": failed,
    }
    result.update(cpu)
    if "server_cpu_s" in result and delivered:
        result["server_cpu_us_per_delivered_msg"] = round(result["server_cpu_s"] / delivered * 1e6, 2)
    return result


async def scenario_triggers(args: argparse.Namespace, callers: int) -> dict[str, Any]:
    """HTTP triggers accepted per second by concurrent callers."""
    channel = f"bench-triggers-{random.randrange(1 << 30)}"
    triggerers = [Triggerer(args) for _ in range(callers)]
    for triggerer in triggerers:
        await triggerer.trigger(channel, "b-0", payload(0))

    counts = {"accepted": 0, "non2xx": 0, "errors": 0, "issued": 0}
    meter = CpuMeter(args.server_pid)
    stop_at = time.perf_counter() + min(args.duration, args.max_seconds)

    async def call(triggerer: Triggerer) -> None:
        while time.perf_counter() < stop_at and counts["issued"] < args.max_requests:
            counts["issued"] += 1
            try:
                status = await triggerer.trigger(channel, "b-1", payload(1))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                counts["errors"] += 1
                triggerer.http.close()
                continue
            if status // 100 == 2:
                counts["accepted"] += 1
            else:
                counts["non2xx"] += 1

    meter.start()
    start = time.perf_counter()
    gc.disable()
    try:
        await asyncio.gather(*(call(triggerer) for triggerer in triggerers))
    finally:
        gc.enable()
    elapsed = time.perf_counter() - start
    cpu = meter.stop()
    connects = sum(triggerer.http.connects for triggerer in triggerers) - callers
    for triggerer in triggerers:
        triggerer.http.close()

    result: dict[str, Any] = {
        "callers": callers,
        "accepted": counts["accepted"],
        "non2xx": counts["non2xx"],
        "errors": counts["errors"],
        "accepted_per_s": round(counts["accepted"] / elapsed, 1),
        "http_connects": connects,
    }
    result.update(cpu)
    if "server_cpu_s" in result and counts["accepted"]:
        result["server_cpu_us_per_trigger"] = round(result["server_cpu_s"] / counts["accepted"] * 1e6, 1)
    return result


async def round_trips(count: int, send: Callable[[], Any]) -> dict[str, float]:
    """Time count calls of the coroutine function send, after a warm-up."""
    samples = []
    for index in range(WARMUP + count):
        start = time.perf_counter()
        await send()
        if index >= WARMUP:
            samples.append(time.perf_counter() - start)
    return distribution_ms(samples)


async def floor_broadcast(address: str, port: int, pid: int, subscribers: int, count: int) -> dict[str, Any]:
    """Time for a plain Tornado handler to write one POST body to every listener."""
    received = [0]
    done: list[asyncio.Future[None] | None] = [None]

    def on_text(client: WebSocketClient, payload_bytes: bytes, now: float) -> None:
        received[0] += 1
        waiter = done[0]
        if received[0] == subscribers and waiter is not None and not waiter.done():
            waiter.set_result(None)

    listeners = []
    for first in range(0, subscribers, CONNECT_BATCH):
        batch = min(CONNECT_BATCH, subscribers - first)
        listeners += await asyncio.gather(*(open_websocket(address, port, "/listen", on_text) for _ in range(batch)))
    await asyncio.sleep(0.2)

    http = HttpConnection(address, port)
    loop = asyncio.get_running_loop()
    meter = CpuMeter(pid)
    samples = []
    delivered = 0
    for index in range(WARMUP + count):
        if index == WARMUP:
            meter.start()
        received[0] = 0
        done[0] = loop.create_future()
        start = time.perf_counter()
        await http.post("/broadcast", json.dumps(payload(index)).encode())
        await asyncio.wait_for(done[0], WAIT_SECONDS)
        if index >= WARMUP:
            samples.append(time.perf_counter() - start)
            delivered += subscribers
    cpu = meter.stop()

    http.close()
    for listener in listeners:
        listener.close()
    await asyncio.sleep(0.1)

    result: dict[str, Any] = {"subscribers": subscribers, "all_received_ms": distribution_ms(samples), "delivered": delivered}
    result.update(cpu)
    if "server_cpu_s" in result and delivered:
        result["server_cpu_us_per_delivered_msg"] = round(result["server_cpu_s"] / delivered * 1e6, 2)
    return result


async def floor_post_rate(address: str, port: int, pid: int, callers: int, seconds: float) -> dict[str, Any]:
    """Plain Tornado POSTs completed per second by concurrent keep-alive callers."""
    connections = [HttpConnection(address, port) for _ in range(callers)]
    body = json.dumps({"name": "b-0", "channels": ["bench"], "data": json.dumps(payload(0))}).encode()
    accepted = [0]
    stop_at = time.perf_counter() + seconds

    async def call(http: HttpConnection) -> None:
        while time.perf_counter() < stop_at:
            status, _ = await http.post("/post", body)
            if status == 200:
                accepted[0] += 1

    meter = CpuMeter(pid)
    meter.start()
    start = time.perf_counter()
    await asyncio.gather(*(call(http) for http in connections))
    elapsed = time.perf_counter() - start
    result: dict[str, Any] = {"callers": callers, "accepted_per_s": round(accepted[0] / elapsed, 1)}
    result.update(meter.stop())
    for http in connections:
        http.close()
    return result


async def scenario_floor(args: argparse.Namespace) -> dict[str, Any]:
    """Run the same client against a plain Tornado server in a child process."""
    process = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER, args.floor_server_cpu], stdout=subprocess.PIPE)
    try:
        line = process.stdout.readline() if process.stdout is not None else b""
        if not line:
            raise RuntimeError("the Tornado baseline server did not start")
        port = int(line)
        address = "127.0.0.1"
        echo_waiter: list[asyncio.Future[None] | None] = [None]

        def on_echo(client: WebSocketClient, payload_bytes: bytes, now: float) -> None:
            waiter = echo_waiter[0]
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

        echo = await open_websocket(address, port, "/echo", on_echo)
        loop = asyncio.get_running_loop()

        async def echo_once() -> None:
            echo_waiter[0] = loop.create_future()
            echo.send_text("x" * 100)
            await asyncio.wait_for(echo_waiter[0], WAIT_SECONDS)

        result: dict[str, Any] = {"ws_echo_rtt_ms": await round_trips(args.count, echo_once)}
        echo.close()

        http = HttpConnection(address, port)
        body = json.dumps(payload(0)).encode()
        result["http_post_rtt_ms"] = await round_trips(args.count, lambda: http.post("/post", body))
        http.close()

        result["http_post_throughput"] = {
            f"c{callers}": await floor_post_rate(address, port, process.pid, callers, min(args.duration, args.max_seconds))
            for callers in parse_counts(args.callers)
        }
        result["py_broadcast_ref"] = {
            f"n{subscribers}": await floor_broadcast(address, port, process.pid, subscribers, args.fanout_floor_count)
            for subscribers in parse_counts(args.subscribers)
        }
        return result
    finally:
        process.terminate()
        process.wait(10)


def parse_counts(text: str) -> list[int]:
    return [int(part) for part in str(text).split(",") if part.strip()]


async def run_all(args: argparse.Namespace) -> None:
    """Run every requested variant --repeat times and print one JSON line per run."""
    if args.scenario == "fanout":
        variants: list[tuple[str | None, int | None]] = [("subscribers", count) for count in parse_counts(args.subscribers)]
    elif args.scenario == "triggers":
        variants = [("callers", count) for count in parse_counts(args.callers)]
    else:
        variants = [(None, None)]

    for name, value in variants:
        for repeat in range(1, args.repeat + 1):
            record: dict[str, Any] = {"scenario": args.scenario, "repeat": repeat, "label": args.label}
            if name is not None:
                record[name] = value

            if args.scenario == "latency":
                work = scenario_latency(args)
            elif args.scenario == "fanout":
                work = scenario_fanout(args, value)
            elif args.scenario == "triggers":
                work = scenario_triggers(args, value)
            else:
                work = scenario_floor(args)

            try:
                record["result"] = await asyncio.wait_for(work, args.max_seconds + 30)
            except (OSError, RuntimeError, asyncio.TimeoutError) as exc:
                record["result"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(record), flush=True)
            if args.pause > 0:
                await asyncio.sleep(args.pause)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; the options follow pusher_bench.py where they overlap."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="server address; loopback only")
    parser.add_argument("--port", type=int, default=6001, help="server port for websockets and the HTTP API")
    parser.add_argument("--app-id", default="1001")
    parser.add_argument("--key", default="bench-key")
    parser.add_argument("--secret", default="bench-secret")
    parser.add_argument("--scenario", required=True, choices=["latency", "fanout", "triggers", "floor"])
    parser.add_argument("--label", default="", help="text copied into each output line")
    parser.add_argument("--count", type=int, default=None, help="timed triggers or samples per run (latency and floor 2000, fanout 200)")
    parser.add_argument("--subscribers", default="1000", help="fanout and floor: comma-separated subscriber counts")
    parser.add_argument("--callers", default="1,8", help="triggers and floor: comma-separated caller counts")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per trigger-rate run")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap on triggers per trigger-rate run")
    parser.add_argument("--fanout-floor-count", type=int, default=200, help="floor: broadcasts per subscriber count")
    parser.add_argument("--floor-server-cpu", default="", help="floor: CPU list for the Tornado server, e.g. 0")
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between runs")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="deadline of each run, in seconds")
    parser.add_argument("--server-pid", type=int, default=0, help="PID of a local server, to report its CPU time")
    parser.add_argument("--client-cpu", default="", help="CPU list for this client, e.g. 1")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (must be installed)")
    args = parser.parse_args(argv)

    args.address = require_loopback(args.host)
    if args.count is None:
        args.count = 200 if args.scenario == "fanout" else 2000
    args.count = max(1, min(args.count, 100_000))
    args.repeat = max(1, min(args.repeat, 20))
    args.duration = max(0.1, min(args.duration, 600.0))
    args.max_seconds = max(1.0, min(args.max_seconds, 3600.0))
    args.fanout_floor_count = max(1, min(args.fanout_floor_count, 100_000))
    for count in parse_counts(args.subscribers):
        if not 1 <= count <= 10_000:
            parser.error(f"--subscribers must be between 1 and 10000, not {count}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    if args.client_cpu:
        os.sched_setaffinity(0, {int(cpu) for cpu in args.client_cpu.split(",")})
    if args.uvloop:
        try:
            import uvloop
        except ImportError:
            sys.exit("--uvloop was given but uvloop is not installed: pip install uvloop, or run without --uvloop")

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    asyncio.run(run_all(args))


if __name__ == "__main__":
    main()
