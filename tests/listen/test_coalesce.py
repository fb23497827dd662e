"""Coalescer: latest-wins slots per key."""

from __future__ import annotations

import threading

from panel_pusher.listen.coalesce import Coalescer


def test_first_offer_schedules():
    slots: Coalescer[int] = Coalescer()

    assert slots.offer("refresh", 1) is True
    assert slots.take("refresh") == 1
    assert slots.finish("refresh") is False


def test_burst_while_pending_keeps_latest():
    slots: Coalescer[int] = Coalescer()

    scheduled = [slots.offer("refresh", n) for n in range(100)]

    assert scheduled.count(True) == 1
    assert slots.take("refresh") == 99
    assert slots.finish("refresh") is False
    assert slots.replaced == 99


def test_offer_during_run_schedules_one_more():
    slots: Coalescer[int] = Coalescer()
    slots.offer("refresh", 1)
    slots.take("refresh")

    assert slots.offer("refresh", 2) is False
    assert slots.offer("refresh", 3) is False
    assert slots.finish("refresh") is True
    assert slots.take("refresh") == 3
    assert slots.finish("refresh") is False


def test_keys_are_independent():
    slots: Coalescer[str] = Coalescer()

    assert slots.offer("refresh", "a") is True
    assert slots.offer("typing", "b") is True
    assert slots.take("typing") == "b"
    assert slots.take("refresh") == "a"


def test_take_without_item_returns_none():
    slots: Coalescer[int] = Coalescer()

    assert slots.take("refresh") is None


def test_clear_forgets_runs():
    slots: Coalescer[int] = Coalescer()
    slots.offer("refresh", 1)
    slots.clear()

    assert slots.offer("refresh", 2) is True


def test_offers_from_threads_schedule_once():
    slots: Coalescer[int] = Coalescer()
    scheduled: list[bool] = []
    lock = threading.Lock()

    def offer_many(start: int) -> None:
        for n in range(start, start + 500):
            result = slots.offer("refresh", n)
            with lock:
                scheduled.append(result)

    threads = [threading.Thread(target=offer_many, args=(i * 1000,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert scheduled.count(True) == 1
    assert slots.take("refresh") is not None
