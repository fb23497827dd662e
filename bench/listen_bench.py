"""Benchmark the listening side: notify into Panel sessions through the hub.

Everything runs on 127.0.0.1 in this process, as in the default setup: the
embedded server in its daemon thread, a Panel server (``pn.serve``, threaded)
whose sessions hold NotifyListen components, and notify calls from the main
thread. Scenarios, each bounded in count and time:

* ``latency``: notify to callback in another session (p50, p99), against the
  server's own HTTP-trigger-to-websocket-receive latency measured with a raw
  websocket subscriber in the same run;
* ``loop``: how long a button callback that notifies blocks its session's
  event loop, with notify's default (background send) and with ``wait=True``;
* ``fanout``: one notification to N listeners (default 1,000) in N sessions
  of one process: time to the last callback, server connections used, and
  data-store reads with and without ``single_flight``;
* ``memory``: memory per listener, for bare listeners (tracemalloc) and per
  page with its Panel session (resident memory).

Example::

    python bench/listen_bench.py --json listen.json
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import threading
import time
import tracemalloc
import urllib.request
from typing import Any

import panel as pn
import websocket
from bokeh.client import pull_session

from panel_pusher import NotifyListen, PusherSettings, get_hub, notify, notify_entity, set_settings, single_flight
from panel_pusher.notify import _UrllibBackend
from panel_pusher.server import start_server
from panel_pusher.signatures import channel_auth

HOST = "127.0.0.1"

# Seconds allowed for any single wait.
TIMEOUT = 30.0


class Room:
    def __init__(self, id: int) -> None:
        self.id = id


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
        "max_ms": round(max(values) * 1000, 3),
        "mean_ms": round(statistics.fmean(values) * 1000, 3),
    }


def wait_for(predicate, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(0.0005)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def server_status(server) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{HOST}:{server.port}/status", timeout=5) as response:
        return json.loads(response.read())


class PanelSite:
    """A Panel app whose pages listen to one room and record callback times."""

    def __init__(self) -> None:
        self.pages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.room_id = 1
        self.refresh = None
        # Whether callbacks rerender the page's Markdown pane.
        self.rerender = True

    def app(self):
        page: dict[str, Any] = {"doc": pn.state.curdoc, "arrivals": {}}
        button = pn.widgets.Button(name="Save")
        view = pn.pane.Markdown("")

        def reload(notification):
            page["arrivals"][notification.message_id] = time.perf_counter()
            if self.refresh is not None:
                self.refresh(notification)
            if self.rerender:
                view.object = notification.message_id

        page["listener"] = NotifyListen(object=Room(self.room_id), actions={"refresh": reload}, show_status=False)
        page["button"] = button
        with self.lock:
            self.pages.append(page)
        return pn.Column(page["listener"], button, view)


def run_in_session(doc, fn):
    done = threading.Event()
    box: dict[str, Any] = {}

    def run():
        try:
            box["value"] = fn()
        finally:
            done.set()

    doc.add_next_tick_callback(run)
    if not done.wait(TIMEOUT):
        raise TimeoutError("session callback did not run")
    return box.get("value")


def bench_latency(server, panel_port: int, site: PanelSite, count: int) -> dict[str, Any]:
    site.room_id = 1
    before = len(site.pages)
    session = pull_session(url=f"http://{HOST}:{panel_port}/app")
    wait_for(lambda: len(site.pages) > before and site.pages[before]["listener"].status == "live")
    page = site.pages[before]

    # Warm up both paths.
    for _ in range(20):
        sent = notify_entity("Room", 1, "refresh", wait=True)
        wait_for(lambda: sent.message_id in page["arrivals"])

    listener_latency = []
    for _ in range(count):
        started = time.perf_counter()
        sent = notify_entity("Room", 1, "refresh", wait=True)
        wait_for(lambda: sent.message_id in page["arrivals"])
        listener_latency.append(page["arrivals"][sent.message_id] - started)
        time.sleep(0.002)

    raw_latency = raw_trigger_latency(server, count)
    session.close()
    return {
        "notify_to_callback": summary_ms(listener_latency),
        "server_trigger_to_receive": summary_ms(raw_latency),
    }


def raw_trigger_latency(server, count: int) -> list[float]:
    """HTTP trigger to websocket receive on a plain websocket-client subscriber."""
    import pusher

    # The same SDK and HTTP backend as notify, so the difference is the hub and the session hand-off.
    client = pusher.Pusher(
        app_id=server.app_id, key=server.key, secret=server.secret, host=HOST, port=server.port,
        ssl=False, backend=_UrllibBackend,
    )
    ws = websocket.create_connection(f"ws://{HOST}:{server.port}/app/{server.key}?protocol=7", timeout=TIMEOUT)
    socket_id = json.loads(json.loads(ws.recv())["data"])["socket_id"]
    channel = "private-RawBench.1"
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {
        "channel": channel, "auth": channel_auth(server.key, server.secret, socket_id, channel)}}))
    while json.loads(ws.recv())["event"] != "pusher_internal:subscription_succeeded":
        pass

    latencies = []
    for number in range(count + 20):
        started = time.perf_counter()
        client.trigger(channel, "refresh", "{}")
        while json.loads(ws.recv())["event"] != "refresh":
            pass
        if number >= 20:
            latencies.append(time.perf_counter() - started)
        time.sleep(0.002)
    ws.close()
    return latencies


def bench_loop(panel_port: int, site: PanelSite, count: int) -> dict[str, Any]:
    site.room_id = 2
    before = len(site.pages)
    session = pull_session(url=f"http://{HOST}:{panel_port}/app")
    wait_for(lambda: len(site.pages) > before and site.pages[before]["listener"].status == "live")
    page = site.pages[before]
    room = Room(2)
    results: dict[str, Any] = {}

    for label, wait in (("default", None), ("wait_true", True)):
        held: list[float] = []

        def save(event, wait=wait):
            notify(room, "saved", wait=wait)

        watcher = page["button"].on_click(save)

        def click():
            started = time.perf_counter()
            page["button"].clicks += 1
            return time.perf_counter() - started

        for _ in range(count):
            held.append(run_in_session(page["doc"], click))
            time.sleep(0.002)
        page["button"].param.unwatch(watcher)
        results[label] = summary_ms(held)

    session.close()
    return results


def bench_fanout(server, panel_port: int, site: PanelSite, listeners: int) -> dict[str, Any]:
    site.room_id = 3
    before = len(site.pages)
    opened = time.perf_counter()
    for _ in range(listeners):
        with urllib.request.urlopen(f"http://{HOST}:{panel_port}/app", timeout=TIMEOUT) as response:
            response.read()
    wait_for(lambda: len(site.pages) == before + listeners)
    pages = site.pages[before:]
    wait_for(lambda: all(p["listener"].status == "live" for p in pages), timeout=120)
    open_seconds = time.perf_counter() - opened

    reads = {"count": 0}

    def load_room(room_id):
        reads["count"] += 1
        time.sleep(0.001)  # a fast data-store read
        return {"id": room_id}

    results: dict[str, Any] = {"listeners": listeners, "sessions_open_seconds": round(open_seconds, 2)}
    rounds = (
        ("callback_only", None, False),
        ("read_and_rerender", lambda n: load_room(n.object_id), True),
        ("single_flight_and_rerender",
         lambda n: single_flight(("room", n.object_id, n.message_id), lambda: load_room(n.object_id)), True),
    )
    for label, refresh, rerender in rounds:
        site.refresh = refresh
        site.rerender = rerender
        reads["count"] = 0
        started = time.perf_counter()
        sent = notify_entity("Room", 3, "refresh", wait=True)
        wait_for(lambda: all(sent.message_id in p["arrivals"] for p in pages), timeout=120)
        last = max(p["arrivals"][sent.message_id] for p in pages)
        first = min(p["arrivals"][sent.message_id] for p in pages)
        results[label] = {
            "first_callback_ms": round((first - started) * 1000, 1),
            "last_callback_ms": round((last - started) * 1000, 1),
            "data_store_reads": reads["count"],
        }

        # Model updates of sessions without a browser run as later ticks on
        # the same loop; wait for them before the next round.
        run_in_session(pages[-1]["doc"], lambda: None)
        time.sleep(0.5)

    site.refresh = None
    status = server_status(server)
    results["server_connections"] = status["connections"]
    results["hub_connections_opened"] = get_hub().stats.connections_opened
    results["threads"] = threading.active_count()

    rss_before = rss_bytes()
    for _ in range(200):
        with urllib.request.urlopen(f"http://{HOST}:{panel_port}/app", timeout=TIMEOUT) as response:
            response.read()
    wait_for(lambda: len(site.pages) == before + listeners + 200)
    gc.collect()
    results["rss_per_page_kib"] = round((rss_bytes() - rss_before) / 200 / 1024, 1)
    return results


def bench_memory(count: int) -> dict[str, Any]:
    """Memory of bare listeners (started without a session), per listener."""
    gc.collect()
    tracemalloc.start()
    first = tracemalloc.take_snapshot()
    listeners = [NotifyListen(object=Room(100_000 + n), show_status=False).start() for n in range(count)]
    wait_for(lambda: all(listener.status == "live" for listener in listeners), timeout=120)
    gc.collect()
    second = tracemalloc.take_snapshot()
    tracemalloc.stop()
    allocated = sum(stat.size_diff for stat in second.compare_to(first, "filename"))
    for listener in listeners:
        listener.stop()
    return {"listeners": count, "bytes_per_listener": round(allocated / count)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="latency,loop,fanout,memory", help="comma-separated scenarios")
    parser.add_argument("--count", type=int, default=300, help="samples per latency scenario (default: %(default)s)")
    parser.add_argument("--listeners", type=int, default=1000, help="listeners for fanout (default: %(default)s)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING)
    scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    results: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}

    server = start_server(HOST, 0)
    set_settings(PusherSettings(
        app_id=server.app_id, key=server.key, secret=server.secret, host=HOST, port=server.port, scheme="http",
    ))
    site = PanelSite()
    panel_port = free_port()
    thread = pn.serve(
        {"app": site.app}, port=panel_port, address=HOST, threaded=True, show=False,
        websocket_origin=[f"{HOST}:{panel_port}"], unused_session_lifetime_milliseconds=3_600_000,
    )
    wait_for(lambda: _answers(panel_port))

    try:
        if "latency" in scenarios:
            results["latency"] = bench_latency(server, panel_port, site, args.count)
            print("latency", json.dumps(results["latency"]), flush=True)
        if "loop" in scenarios:
            results["loop"] = bench_loop(panel_port, site, args.count)
            print("loop", json.dumps(results["loop"]), flush=True)
        if "fanout" in scenarios:
            results["fanout"] = bench_fanout(server, panel_port, site, args.listeners)
            print("fanout", json.dumps(results["fanout"]), flush=True)
        if "memory" in scenarios:
            results["memory"] = bench_memory(args.listeners)
            print("memory", json.dumps(results["memory"]), flush=True)
    finally:
        thread.stop()
        server.stop()

    if args.json:
        with open(args.json, "w") as output:
            json.dump(results, output, indent=2)
    return 0


def _answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection((HOST, port), timeout=5):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
