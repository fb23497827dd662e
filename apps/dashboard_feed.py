"""Write orders from a separate process and notify the dashboard's pages.

Example: ``python apps/dashboard_feed.py --count 20 --interval 0.5``. It uses
the same database and notification settings as ``apps/dashboard.py``, so run
both with the same environment.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time

from dashboard_store import CUSTOMERS, OrderBook, OrderStore
from sqlite_store import StoreError

from panel_pusher import NotifyError, PusherSettings, notify
from panel_pusher.endpoint import probe_health

logger = logging.getLogger("dashboard_feed")

MAX_COUNT = 10_000


def _positive_count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_COUNT}, not {value}")
    return value


def _interval(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, not {value:g}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of the feed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=_positive_count, default=10, help="number of changes to write (default 10)")
    parser.add_argument("--interval", type=_interval, default=1.0, help="seconds between changes (default 1.0)")
    parser.add_argument("--user", default="feed", help="name recorded with each change (default 'feed')")
    parser.add_argument("--db", default=None, help="database file (default: PANEL_PUSHER_DASHBOARD_DB or the data directory)")
    parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    return parser


def write_change(store: OrderStore, generator: random.Random, user: str) -> str:
    """Add an order or advance an open one, and return a one-line description."""
    open_orders = [order for order in store.load().orders if order.status in ("new", "paid", "shipped")]

    if open_orders and generator.random() < 0.5:
        order = store.advance_status(generator.choice(open_orders).id, user=user)
        return f"order {order.id} is now {order.status}"

    order = store.add_order(generator.choice(CUSTOMERS), generator.randrange(20, 900), user=user)
    return f"order {order.id} added: {order.customer}, {order.amount:.2f}"


def main(argv: list[str] | None = None) -> int:
    """Write ``--count`` changes, notifying after each commit; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    store = OrderStore(args.db)
    generator = random.Random(args.seed)

    try:
        settings = PusherSettings.from_env()
    except ValueError as error:
        print(f"dashboard_feed: {error}", file=sys.stderr)
        return 2

    # notify() would start an embedded server in this short-lived process,
    # where no page listens; the pages' server must be running already.
    if settings.embedded and probe_health(settings.embedded_port) is None:
        print(
            f"dashboard_feed: no panel_pusher server answers on 127.0.0.1:{settings.embedded_port}. "
            f"Start the dashboard (panel serve apps/dashboard.py) or `panel-pusher server` first.",
            file=sys.stderr,
        )
        return 1

    try:
        store.initialize()
    except StoreError as error:
        print(f"dashboard_feed: {error}", file=sys.stderr)
        return 1

    for index in range(args.count):
        if index:
            time.sleep(args.interval)

        try:
            description = write_change(store, generator, args.user)
        except StoreError as error:
            logger.error("Change %d not written: %s", index + 1, error)
            continue

        try:
            notify(OrderBook(), "refresh", user=args.user, settings=settings)
        except NotifyError as error:
            logger.error("Change %d written, but notify failed: %s", index + 1, error)
            continue

        logger.info("%d/%d %s", index + 1, args.count, description)

    return 0


if __name__ == "__main__":
    sys.exit(main())
