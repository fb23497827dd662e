"""SingleFlight: concurrent and recent callers with one key share one call."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from panel_pusher.single_flight import SingleFlight, asingle_flight, single_flight

from .support import in_thread


def test_concurrent_callers_share_one_call():
    flight = SingleFlight()
    reads: list[int] = []
    release = threading.Event()

    def load() -> str:
        reads.append(1)
        release.wait(5)
        return "row"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(flight.do("room-1", load))) for _ in range(50)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    release.set()
    for thread in threads:
        thread.join(5)

    assert results == ["row"] * 50
    assert len(reads) == 1
    assert flight.calls == 1
    assert flight.shared == 49


def test_sequential_callers_within_ttl_share():
    flight = SingleFlight(ttl=60)
    reads: list[int] = []

    values = [flight.do("key", lambda: reads.append(1) or len(reads)) for _ in range(1000)]

    assert values == [1] * 1000
    assert len(reads) == 1


def test_different_keys_call_separately():
    flight = SingleFlight()

    assert flight.do("a", lambda: 1) == 1
    assert flight.do("b", lambda: 2) == 2
    assert flight.calls == 2


def test_expired_result_calls_again():
    flight = SingleFlight(ttl=0)
    reads: list[int] = []

    flight.do("key", lambda: reads.append(1))
    flight.do("key", lambda: reads.append(1))

    assert len(reads) == 2


def test_forget_calls_again():
    flight = SingleFlight(ttl=60)
    flight.do("key", lambda: 1)
    flight.forget("key")

    assert flight.do("key", lambda: 2) == 2


def test_failure_shared_with_waiters_not_later_callers():
    flight = SingleFlight(ttl=60)

    with pytest.raises(KeyError):
        flight.do("key", lambda: {}["missing"])

    assert flight.do("key", lambda: "recovered") == "recovered"


def test_max_entries_bounds_memory():
    flight = SingleFlight(ttl=60, max_entries=10)
    for n in range(100):
        flight.do(n, lambda: n)

    assert len(flight._entries) == 10


@pytest.mark.parametrize(("ttl", "max_entries"), [(-1, 10), (1, 0)])
def test_invalid_arguments(ttl, max_entries):
    with pytest.raises(ValueError):
        SingleFlight(ttl=ttl, max_entries=max_entries)


def test_async_callers_share_one_call():
    flight = SingleFlight()
    reads: list[int] = []

    async def load() -> str:
        reads.append(1)
        await asyncio.sleep(0.05)
        return "row"

    async def main() -> list[str]:
        return await asyncio.gather(*(flight.ado("key", load) for _ in range(100)))

    assert in_thread(lambda: asyncio.run(main())) == ["row"] * 100
    assert len(reads) == 1


def test_module_helpers():
    key = ("module-helper", time.monotonic())

    assert single_flight(key, lambda: 5) == 5
    assert single_flight(key, lambda: 6) == 5

    async def load() -> int:
        return 7

    assert in_thread(lambda: asyncio.run(asingle_flight((key, "async"), load))) == 7
