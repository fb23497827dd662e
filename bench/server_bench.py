"""Benchmark the embedded server, with a plain Tornado websocket server as the baseline.

Both servers run in their own processes on 127.0.0.1, pinned to CPU 0 where
the machine has more than one CPU; this client runs on CPU 1. The baseline
is the least a Tornado server can do for the same job: a websocket echo for
the round trip, and an HTTP POST whose body a handler sends to every socket
with ``write_message``. Scenarios, each bounded in count and time:

* ``rtt``: websocket echo round trip on the baseline server;
* ``latency``: HTTP trigger to websocket receive with one subscriber (p50, p99);
* ``fanout``: time for one event to reach all of N subscribers (default 1,000),
  and server CPU time per delivered message;
* ``triggers``: HTTP triggers accepted per second with 1 and 8 callers;
* ``memory``: resident memory per idle websocket connection.

Example::

    python bench/server_bench.py --uvloop --json results.json

Only loopback addresses are used. Server CPU and memory come from
``/proc/<pid>``, so the script needs Linux.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from panel_pusher import signatures

HOST = "127.0.0.1"

APP_ID = "1001"

KEY = "bench-key"

SECRET = "bench-secret"

# Seconds allowed for any single wait (a frame, a response, a server start).
TIMEOUT = 10.0

EMBEDDED_SERVER = """
import signal, sys
from panel_pusher.server import start_server
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
server = start_server("127.0.0.1", 0, app_id=sys.argv[1], key=sys.argv[2], secret=sys.argv[3])
print(server.port, flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
server.stop()
"""

# Plain Tornado: /echo echoes frames; POST /publish sends the body to every /listen socket.
BASELINE_SERVER = """
import asyncio, signal
import tornado.web, tornado.websocket
listeners = set()
class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message)
class Listen(tornado.websocket.WebSocketHandler):
    def open(self):
        listeners.add(self)
    def on_close(self):
        listeners.discard(self)
class Publish(tornado.web.RequestHandler):
    def post(self):
        body = self.request.body.decode()
        for listener in list(listeners):
            listener.write_message(body)
        self.finish("{}")
async def main():
    app = tornado.web.Application([("/echo", Echo), ("/listen", Listen), ("/publish", Publish)])
    server = app.listen(0, "127.0.0.1")
    port = next(iter(server._sockets.values())).getsockname()[1]
    print(port, flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
asyncio.run(main())
"""


# Clients


class WebSocketClient(asyncio.Protocol):
    """A minimal websocket client: handshake, unmasked server frames in, masked text frames out."""

    def __init__(self, path: str, on_text: Callable[[bytes], None]) -> None:
        self.path = path
        self.on_text = on_text
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._handshaken = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._handshaken:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self._buffer.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(bytes(self._buffer[:80]).decode()))
                return
            del self._buffer[: end + 4]
            self._handshaken = True
            self.opened.set_result(None)
        self._parse_frames()

    def _parse_frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            length = buffer[1] & 0x7F
            start = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length = int.from_bytes(buffer[2:4], "big")
                start = 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length = int.from_bytes(buffer[2:10], "big")
                start = 10
            if len(buffer) < start + length:
                return
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            if opcode == 0x1:
                self.on_text(payload)

    def send_text(self, text: str) -> None:
        # A zero mask is valid (RFC 6455 5.3) and leaves the payload as it is.
        payload = text.encode()
        length = len(payload)
        if length < 126:
            header = bytes([0x81, 0x80 | length])
        else:
            header = bytes([0x81, 0x80 | 126]) + length.to_bytes(2, "big")
        assert self.transport is not None
        self.transport.write(header + b"\x00\x00\x00\x00" + payload)


async def open_websocket(port: int, path: str, on_text: Callable[[bytes], None]) -> WebSocketClient:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: WebSocketClient(path, on_text), HOST, port)
    await asyncio.wait_for(client.opened, TIMEOUT)
    return client


class HTTPClient:
    """One keep-alive HTTP/1.1 connection that sends ready-made POST requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> HTTPClient:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def post(self, request: bytes) -> int:
        self.writer.write(request)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def pusher_trigger(channel: str, data: str) -> bytes:
    """Return a signed ``POST /apps/{id}/events`` request."""
    body = json.dumps({"name": "bench", "channels": [channel], "data": data}).encode()
    path = f"/apps/{APP_ID}/events"
    params = {
        "auth_key": KEY,
        "auth_timestamp": str(int(time.time())),
        "auth_version": "1.0",
        "body_md5": signatures.body_md5(body),
    }
    params["auth_signature"] = signatures.sign(SECRET, signatures.request_string("POST", path, params))
    return post_request(f"{path}?{urllib.parse.urlencode(params)}", body)


def post_request(target: str, body: bytes) -> bytes:
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def subscribe_frame(channel: str) -> str:
    return json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}})


# Measurement helpers


def cpu_seconds(pid: int) -> float:
    """Return user plus system CPU seconds of process ``pid``."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Return the resident set size of process ``pid``."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def percentiles(samples: list[float]) -> dict[str, float]:
    """Return p50, p99 and the count of ``samples`` (seconds), in milliseconds."""
    ordered = sorted(samples)
    return {
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 3),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "n": len(ordered),
    }


class Signal:
    """A counter that wakes a waiter when it reaches a target."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.event = asyncio.Event()
        self.last = 0.0

    def reset(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.event.clear()

    def hit(self, payload: bytes) -> None:
        self.count += 1
        if self.count >= self.target:
            self.last = time.perf_counter()
            self.event.set()


# Scenarios


async def websocket_rtt(baseline_port: int, count: int) -> dict[str, float]:
    """Echo round trip on the plain Tornado server."""
    signal = Signal()
    client = await open_websocket(baseline_port, "/echo", signal.hit)
    samples = []
    for index in range(count + 50):
        signal.reset(1)
        start = time.perf_counter()
        client.send_text('{"event":"echo"}')
        await asyncio.wait_for(signal.event.wait(), TIMEOUT)
        if index >= 50:
            samples.append(signal.last - start)
    client.transport.close()  # type: ignore[union-attr]
    return percentiles(samples)


async def trigger_latency(port: int, listen_path: str, make_request: Callable[[], bytes],
                          subscribe: bool, count: int) -> dict[str, float]:
    """HTTP trigger to websocket receive with one subscriber."""
    signal = Signal()
    ready = asyncio.Event()

    def on_text(payload: bytes) -> None:
        if b"subscription_succeeded" in payload or b"connection_established" in payload:
            if b"subscription_succeeded" in payload or not subscribe:
                ready.set()
            return
        signal.hit(payload)

    client = await open_websocket(port, listen_path, on_text)
    if subscribe:
        client.send_text(subscribe_frame("bench-latency"))
        await asyncio.wait_for(ready.wait(), TIMEOUT)
    http = await HTTPClient.open(port)
    request = make_request()

    samples = []
    for index in range(count + 50):
        signal.reset(1)
        start = time.perf_counter()
        status = await http.post(request)
        if status != 200:
            raise RuntimeError(f"trigger failed with HTTP {status}")
        await asyncio.wait_for(signal.event.wait(), TIMEOUT)
        if index >= 50:
            samples.append(signal.last - start)

    http.close()
    client.transport.close()  # type: ignore[union-attr]
    return percentiles(samples)


async def fanout(port: int, pid: int, listen_path: str, make_request: Callable[[], bytes],
                 subscribe: bool, subscribers: int, count: int) -> dict[str, float]:
    """Time for one event to reach every subscriber, and server CPU per delivered message."""
    signal = Signal()
    subscribed = Signal()
    subscribed.reset(subscribers)

    def on_text(payload: bytes) -> None:
        if b"pusher_internal:subscription_succeeded" in payload:
            subscribed.hit(payload)
        elif b"pusher:connection_established" not in payload:
            signal.hit(payload)

    clients = []
    for start in range(0, subscribers, 100):
        batch = [open_websocket(port, listen_path, on_text) for _ in range(min(100, subscribers - start))]
        clients.extend(await asyncio.gather(*batch))
    if subscribe:
        for client in clients:
            client.send_text(subscribe_frame("bench-fanout"))
        await asyncio.wait_for(subscribed.event.wait(), TIMEOUT)

    http = await HTTPClient.open(port)
    request = make_request()
    await asyncio.sleep(0.5)

    samples = []
    cpu_before = cpu_seconds(pid)
    for _ in range(count):
        signal.reset(subscribers)
        start = time.perf_counter()
        await http.post(request)
        await asyncio.wait_for(signal.event.wait(), TIMEOUT)
        samples.append(signal.last - start)
    cpu_used = cpu_seconds(pid) - cpu_before

    http.close()
    for client in clients:
        client.transport.close()  # type: ignore[union-attr]
    await asyncio.sleep(0.5)

    result = percentiles(samples)
    result["server_cpu_us_per_message"] = round(1e6 * cpu_used / (count * subscribers), 2)
    return result


async def trigger_rate(port: int, callers: int, seconds: float, max_requests: int) -> dict[str, float]:
    """HTTP triggers accepted per second by ``callers`` concurrent keep-alive connections."""
    received = Signal()
    listener = await open_websocket(port, f"/app/{KEY}?protocol=7", received.hit)
    listener.send_text(subscribe_frame("bench-rate"))
    connections = [await HTTPClient.open(port) for _ in range(callers)]
    request = pusher_trigger("bench-rate", "x")
    done = 0
    failures = 0
    deadline = time.perf_counter() + seconds

    async def call(http: HTTPClient) -> None:
        nonlocal done, failures
        while time.perf_counter() < deadline and done < max_requests:
            if await http.post(request) == 200:
                done += 1
            else:
                failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(call(http) for http in connections))
    elapsed = time.perf_counter() - start

    for http in connections:
        http.close()
    listener.transport.close()  # type: ignore[union-attr]
    return {"callers": callers, "triggers_per_second": round(done / elapsed), "failures": failures}


async def idle_memory(port: int, pid: int, sockets: int) -> dict[str, float]:
    """Resident memory per idle websocket connection, on a server that has served nothing yet."""
    # One connection first, so that code paths loaded on first use are not counted.
    warm = await open_websocket(port, f"/app/{KEY}?protocol=7", lambda payload: None)
    await asyncio.sleep(0.5)
    before = rss_bytes(pid)
    clients = []
    for start in range(0, sockets, 100):
        batch = [open_websocket(port, f"/app/{KEY}?protocol=7", lambda payload: None)
                 for _ in range(min(100, sockets - start))]
        clients.extend(await asyncio.gather(*batch))
    await asyncio.sleep(1.0)
    after = rss_bytes(pid)
    for client in [warm, *clients]:
        client.transport.close()  # type: ignore[union-attr]
    await asyncio.sleep(0.5)
    return {"sockets": sockets, "kib_per_connection": round((after - before) / sockets / 1024, 1)}


# Running


def start_process(code: str, *args: str, cpu: int | None) -> tuple[subprocess.Popen, int]:
    """Start a server process and return it with the port it printed."""
    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, preexec_fn=pin
    )
    line = process.stdout.readline()  # type: ignore[union-attr]
    if not line.strip().isdigit():
        process.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return process, int(line)


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    server_cpu = 0 if len(os.sched_getaffinity(0)) > 1 else None
    if server_cpu is not None:
        os.sched_setaffinity(0, {1})

    embedded, port = start_process(EMBEDDED_SERVER, APP_ID, KEY, SECRET, cpu=server_cpu)
    baseline, baseline_port = start_process(BASELINE_SERVER, cpu=server_cpu)
    pusher_path = f"/app/{KEY}?protocol=7"
    results: dict[str, Any] = {"rounds": []}

    try:
        for number in range(args.rounds):
            round_result: dict[str, Any] = {}
            round_result["baseline_rtt"] = await websocket_rtt(baseline_port, args.count)
            round_result["baseline_latency"] = await trigger_latency(
                baseline_port, "/listen", lambda: post_request("/publish", b'{"event":"x"}'), False, args.count
            )
            round_result["latency"] = await trigger_latency(
                port, pusher_path, lambda: pusher_trigger("bench-latency", "x"), True, args.count
            )
            round_result["baseline_fanout"] = await fanout(
                baseline_port, baseline.pid, "/listen", lambda: post_request("/publish", b'{"event":"x"}'),
                False, args.subscribers, args.fanout_count,
            )
            round_result["fanout"] = await fanout(
                port, embedded.pid, pusher_path, lambda: pusher_trigger("bench-fanout", "x"),
                True, args.subscribers, args.fanout_count,
            )
            for callers in (1, 8):
                round_result[f"triggers_{callers}"] = await trigger_rate(
                    port, callers, args.seconds, args.max_requests
                )
            results["rounds"].append(round_result)
            print(f"round {number + 1}: {json.dumps(round_result)}", file=sys.stderr)

    finally:
        stop_process(embedded)
        stop_process(baseline)

    # A fresh process, because memory freed by earlier scenarios would be reused.
    fresh, fresh_port = start_process(EMBEDDED_SERVER, APP_ID, KEY, SECRET, cpu=server_cpu)
    try:
        results["memory"] = await idle_memory(fresh_port, fresh.pid, args.subscribers)
    finally:
        stop_process(fresh)

    results["median"] = median_of_rounds(results["rounds"])
    return results


def median_of_rounds(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return, for each figure, the median over the rounds."""
    summary: dict[str, dict[str, float]] = {}
    for scenario in rounds[0]:
        summary[scenario] = {
            field: statistics.median(r[scenario][field] for r in rounds) for field in rounds[0][scenario]
        }
    return summary


def print_table(results: dict[str, Any]) -> None:
    median = results["median"]
    rows = [
        ("websocket echo round trip, plain Tornado", "baseline_rtt", "p50_ms", "p99_ms"),
        ("trigger to receive, plain Tornado POST + write_message", "baseline_latency", "p50_ms", "p99_ms"),
        ("trigger to receive, embedded server", "latency", "p50_ms", "p99_ms"),
        ("one event to all subscribers, plain Tornado", "baseline_fanout", "p50_ms", "p99_ms"),
        ("one event to all subscribers, embedded server", "fanout", "p50_ms", "p99_ms"),
    ]
    print("| scenario | p50 | p99 |")
    print("|---|---|---|")
    for label, key, p50, p99 in rows:
        print(f"| {label} | {median[key][p50]:.3f} ms | {median[key][p99]:.3f} ms |")
    print()
    print(f"server CPU per delivered message: embedded {median['fanout']['server_cpu_us_per_message']:.1f} us, "
          f"plain Tornado {median['baseline_fanout']['server_cpu_us_per_message']:.1f} us")
    print(f"HTTP triggers/s: 1 caller {median['triggers_1']['triggers_per_second']:.0f}, "
          f"8 callers {median['triggers_8']['triggers_per_second']:.0f}")
    print(f"memory per idle connection: {results['memory']['kib_per_connection']:.1f} KiB "
          f"({results['memory']['sockets']} sockets)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported (default: 3)")
    parser.add_argument("--count", type=int, default=2000, help="timed round trips and triggers (default: 2000)")
    parser.add_argument("--subscribers", type=int, default=1000, help="fan-out and memory sockets (default: 1000)")
    parser.add_argument("--fanout-count", type=int, default=100, help="events per fan-out run (default: 100)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per trigger-rate run (default: 3)")
    parser.add_argument("--max-requests", type=int, default=50_000, help="cap per trigger-rate run (default: 50000)")
    parser.add_argument("--uvloop", action="store_true", help="run this client on uvloop")
    parser.add_argument("--json", help="also write the results to this file")
    return parser.parse_args(argv)


def raise_open_file_limit(needed: int) -> None:
    """Raise the soft limit on open files, which both servers inherit, to fit ``needed`` sockets."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raise_open_file_limit(2 * args.subscribers + 256)
    if args.uvloop:
        import uvloop

        uvloop.install()

    results = asyncio.run(run(args))
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    print_table(results)
    if args.json:
        with open(args.json, "w") as output:
            json.dump(results, output, indent=2)


if __name__ == "__main__":
    main()
