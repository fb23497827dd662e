"""Command line: ``panel-pusher server`` and ``panel-pusher status``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from panel_pusher.defaults import DEFAULT_APP_ID, DEFAULT_HOST, DEFAULT_KEY, DEFAULT_PORT
from panel_pusher.defaults import DEFAULT_SECRET
from panel_pusher.notify_cli import add_notify_parser


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def default_port(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """Return the embedded server port from PANEL_PUSHER_PORT, or 6001 when it is unset.

    An invalid value falls back to 6001 here; the settings report it when they load.
    """
    raw = environ.get("PANEL_PUSHER_PORT", "").strip()
    if raw.isdigit() and 1 <= int(raw) <= 65535:
        return int(raw)

    return DEFAULT_PORT


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with one subcommand per action."""
    port = default_port()
    parser = argparse.ArgumentParser(
        prog="panel-pusher",
        description="Run and inspect the embedded Pusher-protocol server, and send notifications.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    server = commands.add_parser("server", help="run the Pusher-protocol server until interrupted")
    server.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)")
    server.add_argument(
        "--port", type=int, default=port, help="TCP port (default: PANEL_PUSHER_PORT or 6001, here %(default)s)"
    )
    server.add_argument("--app-id", default=DEFAULT_APP_ID, help="numeric app id (default: %(default)s)")
    server.add_argument("--key", default=DEFAULT_KEY, help="app key (default: %(default)s)")
    server.add_argument(
        "--secret",
        default=DEFAULT_SECRET,
        help="app secret; required with a non-loopback --host (default: the public local secret)",
    )
    server.add_argument("--webhook-url", default=None, help="URL that receives signed webhooks")
    server.add_argument(
        "--activity-timeout",
        type=int,
        default=120,
        help="seconds of client silence before the server pings (default: %(default)s)",
    )
    server.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        help="logging level (default: %(default)s)",
    )
    server.set_defaults(func=run_server_command)

    status = commands.add_parser("status", help="print the counters of a running server as JSON")
    status.add_argument("--host", default=DEFAULT_HOST, help="server address (default: %(default)s)")
    status.add_argument(
        "--port", type=int, default=port, help="server port (default: PANEL_PUSHER_PORT or 6001, here %(default)s)"
    )
    status.add_argument(
        "--timeout", type=positive_seconds, default=5.0, help="seconds to wait (default: %(default)s)"
    )
    status.set_defaults(func=status_command)

    add_notify_parser(commands)

    return parser


def positive_seconds(raw: str) -> float:
    """Parse a timeout in seconds that must be greater than zero."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {raw!r}") from None

    if not value > 0:
        raise argparse.ArgumentTypeError(f"timeout must be greater than 0 seconds, not {raw}")

    return value


def run_server_command(args: argparse.Namespace) -> int:
    """Run the server in the foreground."""
    from panel_pusher.server.app import ServerConfig, run_server

    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = ServerConfig(
            app_id=args.app_id,
            key=args.key,
            secret=args.secret,
            webhook_url=args.webhook_url,
            activity_timeout=args.activity_timeout,
        )
        run_server(args.host, args.port, config)
    except (ValueError, OSError) as error:
        print(f"panel-pusher server: {error}", file=sys.stderr)
        return 1

    return 0


def status_command(args: argparse.Namespace) -> int:
    """Print ``GET /status`` of a running server."""
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}/status"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            status = json.load(response)
    except (OSError, ValueError) as error:
        print(
            f"panel-pusher status: no response from a panel_pusher server at {url}: {error}. "
            "Start one with 'panel-pusher server', or pass its --host and --port.",
            file=sys.stderr,
        )
        return 1

    print(json.dumps(status, indent=2, sort_keys=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``panel-pusher`` command and return its exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
