from __future__ import annotations

import sqlite3

import pytest
from dashboard_store import STATUSES, OrderNotFound, OrderStore, default_dashboard_db
from sqlite_store import StoreUnavailable


@pytest.fixture
def store(tmp_path):
    store = OrderStore(tmp_path / "orders.sqlite3", busy_timeout=0.2)
    store.initialize(seed_orders=3)
    return store


def test_seeded_once(store):
    store.initialize(seed_orders=3)

    assert len(store.load().orders) == 3


def test_default_path(tmp_path):
    path = default_dashboard_db({"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")})

    assert path == str(tmp_path / "xdg" / "panel_pusher" / "dashboard.sqlite3")


def test_add_order_bumps_version(store):
    before = store.load()

    order = store.add_order(" Acme ", 12.345, user="ann")
    after = store.load()

    assert order.customer == "Acme"
    assert order.amount == 12.35
    assert after.version == before.version + 1
    assert after.changed_by == "ann"
    assert after.orders[-1] == order


def test_advance_status_walks_statuses(store):
    order = store.add_order("Acme", 10, user="ann")
    seen = [order.status]

    for _ in range(3):
        seen.append(store.advance_status(order.id, user="bob").status)

    assert seen == ["new", "paid", "shipped", "delivered"]
    with pytest.raises(ValueError, match="no next status"):
        store.advance_status(order.id, user="bob")


def test_advance_unknown_order(store):
    with pytest.raises(OrderNotFound, match="no order with id 999"):
        store.advance_status(999, user="ann")


@pytest.mark.parametrize(
    ("customer", "amount", "message"),
    [
        ("", 10, "customer name"),
        ("x" * 61, 10, "at most 60"),
        ("Acme", 0, "above 0"),
        ("Acme", -5, "above 0"),
        ("Acme", 1_000_001, "at most 1,000,000"),
        ("Acme", "ten", "must be a number"),
        ("Acme", None, "must be a number"),
    ],
)
def test_bad_order_rejected(store, customer, amount, message):
    version = store.load().version

    with pytest.raises(ValueError, match=message):
        store.add_order(customer, amount, user="ann")

    assert store.load().version == version


def test_unknown_status_rejected(store):
    with pytest.raises(ValueError, match="Unknown status 'lost'"):
        store.add_order("Acme", 10, user="ann", status="lost")


def test_reads_counted(store):
    before = store.reads

    store.load()
    store.load()

    assert store.reads == before + 2


def test_totals_by_status(store):
    totals = store.load().totals_by_status()

    assert list(totals) == list(STATUSES)
    assert sum(totals.values()) == pytest.approx(sum(o.amount for o in store.load().orders))


def test_locked_write_reported(store):
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")

    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.add_order("Acme", 10, user="ann")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert len(store.load().orders) == 3
