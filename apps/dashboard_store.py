"""Orders of the live dashboard, in SQLite, with a per-process count of reads.

Every write bumps a version row in the same transaction, so a reader learns
when the data set last changed and who changed it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import random
import threading

import param
from sqlite_store import SQLiteStore, StoreError, database_path

logger = logging.getLogger(__name__)

DASHBOARD_DB_ENV = "PANEL_PUSHER_DASHBOARD_DB"

STATUSES = ("new", "paid", "shipped", "delivered", "cancelled")

MAX_CUSTOMER_LENGTH = 60

MAX_AMOUNT = 1_000_000.0

CUSTOMERS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell")


class OrderNotFound(StoreError):
    """No order has the requested id."""


class OrderBook(param.Parameterized):
    """The orders data set as one object, so that pages listen on a single channel."""

    pusher_entity = "Orders"

    id = param.String(default="all", doc="""
        Id of the data set; each database contains one data set.""")


@dataclasses.dataclass(frozen=True)
class Order:
    """One row of the orders table."""

    id: int
    customer: str
    status: str
    amount: float
    updated_at: dt.datetime
    updated_by: str


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """All orders, with the time and the user of the last change to the data set."""

    orders: tuple[Order, ...]
    version: int
    changed_at: dt.datetime
    changed_by: str

    def totals_by_status(self) -> dict[str, float]:
        """Return the summed amount per status, in the order of STATUSES."""
        totals = {status: 0.0 for status in STATUSES}
        for order in self.orders:
            totals[order.status] += order.amount
        return totals


SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    status TEXT NOT NULL,
    amount REAL NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dataset_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    changed_at TEXT NOT NULL,
    changed_by TEXT NOT NULL
);
"""


def default_dashboard_db(environ: dict[str, str] | None = None) -> str:
    """Return the path from ``PANEL_PUSHER_DASHBOARD_DB`` or ``dashboard.sqlite3`` in the data directory."""
    return str(database_path(DASHBOARD_DB_ENV, "dashboard.sqlite3", environ))


def clean_customer(customer: str) -> str:
    """Return ``customer`` stripped, or raise ValueError if it is empty or too long."""
    customer = (customer or "").strip()

    if not customer:
        raise ValueError("Enter a customer name.")
    if len(customer) > MAX_CUSTOMER_LENGTH:
        raise ValueError(
            f"Customer names are at most {MAX_CUSTOMER_LENGTH} characters, not {len(customer)}."
        )

    return customer


def clean_amount(amount: float) -> float:
    """Return ``amount`` as a float rounded to cents, or raise ValueError if not in (0, MAX_AMOUNT]."""
    try:
        value = float(amount)
    except (TypeError, ValueError) as error:
        raise ValueError(f"The amount must be a number, not {amount!r}.") from error

    if not 0 < value <= MAX_AMOUNT:
        raise ValueError(f"The amount must be above 0 and at most {MAX_AMOUNT:,.0f}, not {value:g}.")

    return round(value, 2)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class OrderStore(SQLiteStore):
    """Orders in one SQLite file, with ``reads``: how many snapshots this process loaded.

    Example::

        store = OrderStore("/tmp/orders.sqlite3")
        store.initialize()
        store.add_order("Acme", 120.0, user="ann")
        snapshot = store.load()
    """

    schema = SCHEMA

    def __init__(self, path: str | os.PathLike[str] | None = None, **kwargs):
        super().__init__(path or default_dashboard_db(), **kwargs)
        self._reads = 0
        self._reads_lock = threading.Lock()

    @property
    def reads(self) -> int:
        """Number of ``load()`` calls in this process that reached the database."""
        return self._reads

    def initialize(self, seed_orders: int = 12) -> None:
        """Create the tables; when the table is empty, add ``seed_orders`` sample orders."""
        super().initialize()

        with self.transaction() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO dataset_version (id, version, changed_at, changed_by) "
                "VALUES (1, 0, ?, 'system')",
                (_utcnow().isoformat(),),
            )
            empty = connection.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0

        if empty and seed_orders:
            generator = random.Random(4)
            for _ in range(seed_orders):
                self.add_order(
                    generator.choice(CUSTOMERS),
                    generator.randrange(20, 900),
                    user="system",
                    status=generator.choice(STATUSES[:4]),
                )

    def add_order(self, customer: str, amount: float, *, user: str, status: str = "new") -> Order:
        """Insert an order, bump the version and return the order."""
        customer = clean_customer(customer)
        amount = clean_amount(amount)
        if status not in STATUSES:
            raise ValueError(f"Unknown status {status!r}; expected one of {', '.join(STATUSES)}.")
        now = _utcnow()

        with self.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO orders (customer, status, amount, updated_at, updated_by) "
                "VALUES (?, ?, ?, ?, ?)",
                (customer, status, amount, now.isoformat(), user),
            )
            self._bump(connection, now, user)

        return Order(cursor.lastrowid, customer, status, amount, now, user)

    def advance_status(self, order_id: int, *, user: str) -> Order:
        """Move an order to the next status (new, paid, shipped, delivered) and return it."""
        now = _utcnow()

        with self.transaction() as connection:
            row = connection.execute(
                "SELECT id, customer, status, amount FROM orders WHERE id = ?", (order_id,)
            ).fetchone()
            if row is None:
                raise OrderNotFound(f"There is no order with id {order_id!r}.")

            status = row["status"]
            if status in ("delivered", "cancelled"):
                raise ValueError(f"Order {order_id} is {status}; it has no next status.")
            status = STATUSES[STATUSES.index(status) + 1]

            connection.execute(
                "UPDATE orders SET status = ?, updated_at = ?, updated_by = ? WHERE id = ?",
                (status, now.isoformat(), user, order_id),
            )
            self._bump(connection, now, user)

        return Order(row["id"], row["customer"], status, row["amount"], now, user)

    def load(self) -> Snapshot:
        """Read all orders and the version row in one transaction, and count the read."""
        with self._reads_lock:
            self._reads += 1

        with self.connection() as connection:
            connection.execute("BEGIN")
            rows = connection.execute(
                "SELECT id, customer, status, amount, updated_at, updated_by FROM orders ORDER BY id"
            ).fetchall()
            version = connection.execute(
                "SELECT version, changed_at, changed_by FROM dataset_version WHERE id = 1"
            ).fetchone()
            connection.execute("COMMIT")

        orders = tuple(
            Order(
                row["id"],
                row["customer"],
                row["status"],
                row["amount"],
                dt.datetime.fromisoformat(row["updated_at"]),
                row["updated_by"],
            )
            for row in rows
        )
        if version is None:
            return Snapshot(orders, 0, _utcnow(), "system")

        return Snapshot(
            orders,
            version["version"],
            dt.datetime.fromisoformat(version["changed_at"]),
            version["changed_by"],
        )

    @staticmethod
    def _bump(connection, now: dt.datetime, user: str) -> None:
        connection.execute(
            "UPDATE dataset_version SET version = version + 1, changed_at = ?, changed_by = ? "
            "WHERE id = 1",
            (now.isoformat(), user),
        )
