"""Benchmark the embedded server side by side with soketi in one run.

The script starts the embedded server and soketi on 127.0.0.1, both pinned to
one CPU, and drives them with a load client. By default that is
``pusher_load.py`` beside this script. ``--harness`` can name the
server-agnostic harness ``pusher_bench.py`` instead, which takes the same
options. Each round runs these scenarios against both servers, in alternating
order so that drift on a shared machine hits both alike:

* ``latency``: trigger-to-receive time with one subscriber;
* ``fanout``: time for one event to reach all of 1,000 subscribers, and the
  server CPU time per delivered message;
* ``triggers``: HTTP triggers accepted per second with 1 and 8 callers;
* ``floor``: a plain Tornado server as the baseline: an HTTP POST that a
  handler writes to every websocket, and plain HTTP POSTs.

It prints the median of the rounds for each figure, the ratio of the embedded
server to soketi and to the Tornado baseline, and whether the targets hold
(p50 latency and fan-out time at most 1.5x soketi's, CPU per delivered message
at most 2x). Example::

    python bench/compare_soketi.py \\
        --soketi-cmd "node node_modules/@soketi/soketi/bin/server.js start --config=soketi.json" \\
        --soketi-cwd /path/to/soketi --soketi-port 6001

The soketi command can also come from the SOKETI_CMD environment variable.
The soketi config must define the app id, key and secret given here (by
default 1001, bench-key, bench-secret) and listen on 127.0.0.1 at
``--soketi-port``. The script does not install soketi: point ``--soketi-cmd``
at an existing soketi 1.6.1 installation.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("compare_soketi")

HOST = "127.0.0.1"

STARTUP_TIMEOUT_SECONDS = 30.0

# Slack added to the load client's own per-run deadline before it is killed.
LOAD_CLIENT_SLACK_SECONDS = 60.0

EMBEDDED_MAIN = """
import signal, sys, threading
from panel_pusher.server import start_server

host, port, app_id, key, secret = sys.argv[1:6]
server = start_server(host=host, port=int(port), app_id=app_id, key=key, secret=secret)
print(server.port, flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
while not stop.wait(0.5):
    pass
server.stop()
"""


@dataclass(frozen=True)
class Metric:
    """One figure in the report and its path in the load client output."""

    key: str
    label: str
    scenario: str
    variant: int | None
    path: str
    unit: str
    lower_is_better: bool = True
    floor_path: str | None = None


METRICS = [
    Metric(
        "latency_p50",
        "trigger to receive, 1 subscriber, p50",
        "latency",
        None,
        "trigger_to_receive_ms.p50",
        "ms",
        floor_path="py_broadcast_ref.n1.all_received_ms.p50",
    ),
    Metric(
        "latency_p99",
        "trigger to receive, 1 subscriber, p99",
        "latency",
        None,
        "trigger_to_receive_ms.p99",
        "ms",
        floor_path="py_broadcast_ref.n1.all_received_ms.p99",
    ),
    Metric(
        "fanout_p50",
        "one event to all of 1,000 subscribers, p50",
        "fanout",
        1000,
        "all_received_ms.p50",
        "ms",
        floor_path="py_broadcast_ref.n1000.all_received_ms.p50",
    ),
    Metric(
        "fanout_p99",
        "one event to all of 1,000 subscribers, p99",
        "fanout",
        1000,
        "all_received_ms.p99",
        "ms",
        floor_path="py_broadcast_ref.n1000.all_received_ms.p99",
    ),
    Metric(
        "fanout_cpu",
        "server CPU per delivered message (1,000 subscribers)",
        "fanout",
        1000,
        "server_cpu_us_per_delivered_msg",
        "us",
        floor_path="py_broadcast_ref.n1000.server_cpu_us_per_delivered_msg",
    ),
    Metric(
        "triggers_c1",
        "HTTP triggers accepted, 1 caller",
        "triggers",
        1,
        "accepted_per_s",
        "/s",
        lower_is_better=False,
        floor_path="http_post_throughput.c1.accepted_per_s",
    ),
    Metric(
        "triggers_c8",
        "HTTP triggers accepted, 8 callers",
        "triggers",
        8,
        "accepted_per_s",
        "/s",
        lower_is_better=False,
        floor_path="http_post_throughput.c8.accepted_per_s",
    ),
    Metric(
        "triggers_c8_cpu",
        "server CPU per trigger, 8 callers",
        "triggers",
        8,
        "server_cpu_us_per_trigger",
        "us",
    ),
]

# Targets as maximum ratios of the embedded server's figure to soketi's.
TARGETS = {"latency_p50": 1.5, "fanout_p50": 1.5, "fanout_cpu": 2.0}

# Load client result fields that must be zero for a run to count as complete.
COMPLETENESS_FIELDS = {
    "latency": ("lost", "http_non2xx"),
    "fanout": ("incomplete_events", "http_non2xx"),
    "triggers": ("non2xx", "errors"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        "--harness",
        default=os.environ.get("PUSHER_BENCH_HARNESS") or str(Path(__file__).with_name("pusher_load.py")),
        help="load client script: pusher_load.py beside this script, $PUSHER_BENCH_HARNESS, or pusher_bench.py",
    )
    parser.add_argument(
        "--soketi-cmd",
        default=os.environ.get("SOKETI_CMD"),
        help="command line that starts soketi 1.6.1 in the foreground (default: $SOKETI_CMD)",
    )
    parser.add_argument("--soketi-port", type=int, default=6001, help="port soketi listens on, as set in its config")
    parser.add_argument("--soketi-cwd", default=None, help="working directory for the soketi command")
    parser.add_argument("--app-id", default="1001", help="app id configured in soketi (digits only)")
    parser.add_argument("--key", default="bench-key", help="app key configured in soketi")
    parser.add_argument("--secret", default="bench-secret", help="app secret configured in soketi")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all scenarios; the report gives their median")
    parser.add_argument("--server-cpu", default="0", help="CPU list both servers are pinned to (taskset -c)")
    parser.add_argument("--client-cpu", default="1", help="CPU list the load client is pinned to")
    parser.add_argument("--latency-count", type=int, default=2000, help="triggers per latency run")
    parser.add_argument("--fanout-count", type=int, default=200, help="events per fan-out run")
    parser.add_argument("--trigger-seconds", type=float, default=5.0, help="seconds per trigger-throughput run")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="deadline of each load client run, in seconds")
    parser.add_argument("--no-uvloop", action="store_true", help="run the load client on the default asyncio loop instead of uvloop (needed where uvloop is not installed)")
    parser.add_argument("--output", default=None, help="write every load client result as JSON lines to this file")
    parser.add_argument("--markdown", action="store_true", help="print the summary as a Markdown table")
    args = parser.parse_args(argv)

    if not Path(args.harness).is_file():
        parser.error(f"--harness {args.harness!r} is not a file")
    if not args.soketi_cmd:
        parser.error("--soketi-cmd is required (or set SOKETI_CMD)")
    if args.rounds < 1 or args.rounds > 20:
        parser.error(f"--rounds must be between 1 and 20, not {args.rounds}")

    return args


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    """Return True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_listening(name: str, process: subprocess.Popen, port: int) -> None:
    """Wait until process listens on port; raise RuntimeError if it exits or times out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} before listening on port {port}")
        if port_open(port):
            return
        time.sleep(0.2)

    raise RuntimeError(f"{name} did not listen on port {port} within {STARTUP_TIMEOUT_SECONDS} s")


def pinned(command: list[str], cpus: str) -> list[str]:
    """Prefix command with taskset so it runs on the given CPUs."""
    if not cpus:
        return command

    return ["taskset", "-c", cpus, *command]


def start_embedded(args: argparse.Namespace, log_dir: Path) -> tuple[subprocess.Popen, int]:
    """Start the embedded server in its own process and return it with its port."""
    port = free_port()
    command = pinned([sys.executable, "-c", EMBEDDED_MAIN, HOST, str(port), args.app_id, args.key, args.secret], args.server_cpu)
    log_file = open(log_dir / "embedded.log", "w", encoding="utf-8")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file)
    log_file.close()
    wait_listening("embedded server", process, port)
    return process, port


def start_soketi(args: argparse.Namespace, log_dir: Path) -> subprocess.Popen:
    """Start soketi from the user's command line, pinned like the embedded server."""
    if port_open(args.soketi_port):
        raise RuntimeError(f"port {args.soketi_port} is already in use; stop that process or change the soketi config")

    command = pinned(shlex.split(args.soketi_cmd), args.server_cpu)
    log_file = open(log_dir / "soketi.log", "w", encoding="utf-8")
    process = subprocess.Popen(command, cwd=args.soketi_cwd, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    wait_listening("soketi", process, args.soketi_port)
    return process


def stop_process(name: str, process: subprocess.Popen) -> None:
    """Terminate one process this script started, and kill it if it lingers."""
    if process.poll() is not None:
        return

    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        logger.warning("%s (pid %d) ignored SIGTERM; killing it", name, process.pid)
        process.kill()
        process.wait(10)


def load_client_command(args: argparse.Namespace, scenario: str, port: int | None, server_pid: int | None) -> list[str]:
    """Build the load client command line for one scenario run."""
    command = [
        sys.executable,
        args.harness,
        "--host",
        HOST,
        "--scenario",
        scenario,
        "--repeat",
        "1",
        "--pause",
        "0",
        "--max-seconds",
        str(args.max_seconds),
    ]
    if args.client_cpu:
        command += ["--client-cpu", args.client_cpu]
    if not args.no_uvloop:
        command.append("--uvloop")

    if scenario != "floor":
        command += ["--port", str(port), "--app-id", args.app_id, "--key", args.key, "--secret", args.secret]
        command += ["--server-pid", str(server_pid)]

    if scenario == "latency":
        command += ["--count", str(args.latency_count)]
    elif scenario == "fanout":
        command += ["--subscribers", "1000", "--count", str(args.fanout_count)]
    elif scenario == "triggers":
        command += ["--callers", "1,8", "--duration", str(args.trigger_seconds)]
    elif scenario == "floor":
        command += [
            "--subscribers",
            "1,1000",
            "--count",
            str(args.latency_count),
            "--fanout-floor-count",
            str(args.fanout_count),
            "--callers",
            "1,8",
            "--duration",
            str(args.trigger_seconds),
            "--floor-server-cpu",
            args.server_cpu,
        ]

    return command


def run_load_client(args: argparse.Namespace, scenario: str, port: int | None = None, server_pid: int | None = None) -> list[dict[str, Any]]:
    """Run one load client scenario and return its per-run JSON records."""
    command = load_client_command(args, scenario, port, server_pid)
    variants = 2 if scenario in ("triggers", "floor") else 1
    timeout = variants * args.max_seconds + LOAD_CLIENT_SLACK_SECONDS
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"load client {scenario} exited with code {completed.returncode}: {completed.stderr.strip()[-1000:]}")

    records = []
    for line in completed.stdout.splitlines():
        record = json.loads(line)
        if "result" in record:
            records.append(record)
    return records


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten nested dicts into dotted keys, keeping numbers only."""
    flat: dict[str, float] = {}
    for name, item in value.items():
        if isinstance(item, dict):
            flat.update(flatten(item, f"{prefix}{name}."))
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            flat[prefix + name] = item
    return flat


def variant_of(record: dict[str, Any]) -> int | None:
    """Return the subscriber or caller count a load client record was run with."""
    if record["scenario"] == "fanout":
        return record.get("subscribers")
    if record["scenario"] == "triggers":
        return record.get("callers")
    return None


def check_complete(target: str, record: dict[str, Any]) -> list[str]:
    """Return warnings for a load client record with errors, losses or a failed run."""
    result = record["result"]
    scenario = record["scenario"]
    if "error" in result:
        return [f"{target} {scenario}: run failed: {result['error']}"]

    warnings = []
    for name in COMPLETENESS_FIELDS.get(scenario, ()):
        if result.get(name):
            warnings.append(f"{target} {scenario} {variant_of(record) or ''}: {name}={result[name]}".replace("  ", " "))
    if scenario == "fanout" and result.get("delivered") != result.get("expected"):
        warnings.append(f"{target} fanout: delivered {result.get('delivered')} of {result.get('expected')} messages")
    return warnings


def run_round(args: argparse.Namespace, number: int, servers: dict[str, tuple[int, int]], samples: dict, warnings: list[str], output) -> None:
    """Run every scenario once against both servers and the floor, and store the figures."""
    names = list(servers)
    if number % 2 == 0:
        names.reverse()

    for scenario in ("latency", "fanout", "triggers"):
        for target in names:
            port, pid = servers[target]
            logger.info("round %d: %s on %s", number, scenario, target)
            for record in run_load_client(args, scenario, port, pid):
                record["target"] = target
                record["round"] = number
                if output is not None:
                    output.write(json.dumps(record) + "\n")
                warnings.extend(check_complete(target, record))
                flat = flatten(record["result"])
                for metric in METRICS:
                    if metric.scenario == scenario and metric.variant == variant_of(record) and metric.path in flat:
                        samples.setdefault((target, metric.key), []).append(flat[metric.path])

    logger.info("round %d: Tornado floor", number)
    for record in run_load_client(args, "floor"):
        record["target"] = "tornado"
        record["round"] = number
        if output is not None:
            output.write(json.dumps(record) + "\n")
        flat = flatten(record["result"])
        for metric in METRICS:
            if metric.floor_path and metric.floor_path in flat:
                samples.setdefault(("tornado", metric.key), []).append(flat[metric.floor_path])
        for extra in ("ws_echo_rtt_ms.p50", "http_post_rtt_ms.p50"):
            if extra in flat:
                samples.setdefault(("tornado", extra), []).append(flat[extra])


def median(samples: dict, target: str, key: str) -> float | None:
    """Return the median of the collected samples, or None when there are none."""
    values = samples.get((target, key))
    if not values:
        return None
    return statistics.median(values)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, or None when either is missing or zero."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def format_number(value: float | None, unit: str = "") -> str:
    """Format a figure with a precision that suits its size."""
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def format_ratio(value: float | None) -> str:
    """Format a ratio as for example 1.23x."""
    return "n/a" if value is None else f"{value:.2f}x"


def summary_rows(samples: dict) -> list[list[str]]:
    """Build the summary table: figure, embedded, soketi, ratios, Tornado baseline."""
    rows = []
    for metric in METRICS:
        embedded = median(samples, "embedded", metric.key)
        soketi = median(samples, "soketi", metric.key)
        floor = median(samples, "tornado", metric.key)
        rows.append(
            [
                metric.label,
                format_number(embedded, metric.unit),
                format_number(soketi, metric.unit),
                format_ratio(ratio(embedded, soketi)),
                format_number(floor, metric.unit),
                format_ratio(ratio(embedded, floor)),
            ]
        )
    return rows


def target_lines(samples: dict) -> list[str]:
    """Return one line per target: the ratio to soketi and whether it holds."""
    lines = []
    for key, limit in TARGETS.items():
        metric = next(m for m in METRICS if m.key == key)
        value = ratio(median(samples, "embedded", key), median(samples, "soketi", key))
        if value is None:
            lines.append(f"{metric.label}: not measured")
            continue
        verdict = "met" if value <= limit else f"missed by {value / limit:.2f}x"
        lines.append(f"{metric.label}: {value:.2f}x soketi (target at most {limit}x): {verdict}")
    return lines


def print_table(rows: list[list[str]], markdown: bool) -> None:
    """Print the summary rows as aligned text or as a Markdown table."""
    header = ["figure (median of rounds)", "embedded", "soketi 1.6.1", "embedded / soketi", "Tornado baseline", "embedded / Tornado"]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return

    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


def machine_description() -> str:
    """Describe CPU count, CPU model and Python version."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


def source_revision() -> str:
    """Return the git revision of this checkout, with -dirty for local changes."""
    repository = Path(__file__).resolve().parent.parent
    try:
        completed = subprocess.run(
            ["git", "-C", str(repository), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return completed.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the report; return the exit status."""
    args = parse_args(argv)
    revision = source_revision()
    load_before = os.getloadavg()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    log_dir = Path(tempfile.mkdtemp(prefix="compare_soketi-"))
    logger.info("server logs in %s", log_dir)

    output = open(args.output, "w", encoding="utf-8") if args.output else None
    processes: list[tuple[str, subprocess.Popen]] = []
    samples: dict = {}
    warnings: list[str] = []
    try:
        embedded, embedded_port = start_embedded(args, log_dir)
        processes.append(("embedded server", embedded))
        soketi = start_soketi(args, log_dir)
        processes.append(("soketi", soketi))
        servers = {"embedded": (embedded_port, embedded.pid), "soketi": (args.soketi_port, soketi.pid)}

        for number in range(1, args.rounds + 1):
            run_round(args, number, servers, samples, warnings, output)
    finally:
        for name, process in reversed(processes):
            stop_process(name, process)
        if output is not None:
            output.close()

    print(f"command: {shlex.join([sys.executable, *sys.argv])}" if argv is None else f"arguments: {shlex.join(argv)}")
    print(f"revision: {revision}")
    print(f"machine: {machine_description()}")
    load_after = os.getloadavg()
    print(f"load average (1 min) before and after the run: {load_before[0]:.2f}, {load_after[0]:.2f}")
    print(f"servers pinned to CPU {args.server_cpu or 'any'}, load client to CPU {args.client_cpu or 'any'}, {args.rounds} rounds")
    print_table(summary_rows(samples), args.markdown)
    for key in ("ws_echo_rtt_ms.p50", "http_post_rtt_ms.p50"):
        print(f"Tornado {key}: {format_number(median(samples, 'tornado', key), 'ms')}")
    for line in target_lines(samples):
        print(line)
    for warning in warnings:
        print(f"warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
