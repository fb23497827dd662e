"""The live dashboard in real Chromium, changed by its own pages and by the feed process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from browser_support import local_context, shadow_text
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]

PUSH_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def dashboard(serve):
    return serve("dashboard")


@pytest.fixture
def open_dashboard(chromium, dashboard):
    """Return a function that opens the dashboard in a fresh browser context."""
    contexts = []

    def open_page(query: str = ""):
        context = local_context(chromium, viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.goto(dashboard.url + query)
        expect(page.locator(".last-updated")).to_contain_text("Last updated", timeout=PUSH_TIMEOUT_MS)
        expect(page.locator(".pp-badge:visible")).to_have_text("live", timeout=PUSH_TIMEOUT_MS)
        return page

    yield open_page

    for context in contexts:
        context.close()


def run_feed(app_env: dict[str, str], *, count: int, user: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "apps" / "dashboard_feed.py"),
         "--count", str(count), "--interval", "0.2", "--user", user, "--seed", "7"],
        env=app_env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def counter(page, label: str) -> int:
    text = shadow_text(page.locator(".counters"))
    match = re.search(rf"{label} (\d+)", text)
    assert match, text
    return int(match.group(1))


def test_screenshot(open_dashboard, app_env):
    page = open_dashboard()
    run_feed(app_env, count=3, user="feed")
    expect(page.locator(".last-updated")).to_contain_text("by feed", timeout=PUSH_TIMEOUT_MS)

    path = REPO / "docs" / "dashboard.png"
    page.screenshot(path=str(path))

    assert path.stat().st_size > 10_000


def test_feed_updates_page(open_dashboard, app_env):
    page = open_dashboard()

    log = run_feed(app_env, count=2, user="feed-one")

    assert "2/2" in log
    expect(page.locator(".last-updated")).to_contain_text("by feed-one", timeout=PUSH_TIMEOUT_MS)
    expect(page.locator(".counters")).to_contain_text("delay from change to screen: last")


def test_pages_share_one_read_per_change(open_dashboard, app_env):
    pages = [open_dashboard() for _ in range(3)]
    before = max(counter(page, "store reads by this process") for page in pages)

    run_feed(app_env, count=1, user="feed-two")

    for page in pages:
        expect(page.locator(".last-updated")).to_contain_text("by feed-two", timeout=PUSH_TIMEOUT_MS)
    after = max(counter(page, "store reads by this process") for page in pages)
    assert after == before + 1


def test_page_change_reaches_other_page(open_dashboard):
    writer = open_dashboard()
    reader = open_dashboard()

    writer.get_by_placeholder("Acme").fill("Zeta Corp")
    writer.get_by_role("button", name="Add order").click()

    expect(reader.get_by_text("Zeta Corp", exact=True)).to_be_visible(timeout=PUSH_TIMEOUT_MS)
    expect(writer.get_by_text("Zeta Corp", exact=True)).to_be_visible()


def test_empty_customer_rejected(open_dashboard):
    page = open_dashboard()

    page.get_by_role("button", name="Add order").click()

    expect(page.get_by_text("Enter a customer name.")).to_be_visible()


def test_unknown_order_rejected(open_dashboard):
    page = open_dashboard()
    box = page.locator(".order-id input")
    box.fill("99999")
    box.press("Enter")

    page.get_by_role("button", name="Advance status").click()

    expect(page.get_by_text("There is no order with id 99999.")).to_be_visible()


def test_poll_mode_reads_on_timer(open_dashboard, app_env):
    page = open_dashboard("?mode=poll")
    expect(page.locator(".counters")).to_contain_text("Mode poll")
    first = counter(page, "reads by this page")

    expect(page.locator(".counters")).not_to_contain_text(f"reads by this page {first} ", timeout=10_000)
    run_feed(app_env, count=1, user="feed-three")

    expect(page.locator(".last-updated")).to_contain_text("by feed-three", timeout=PUSH_TIMEOUT_MS)


def test_later_page_loads_local_stylesheets(open_dashboard, app_env):
    # Last in the module, after other pages' sessions have ended.
    page = open_dashboard()
    run_feed(app_env, count=1, user="feed-four")
    expect(page.locator(".last-updated")).to_contain_text("by feed-four", timeout=PUSH_TIMEOUT_MS)

    outside = [url for url in page.context.blocked_urls if "tabler" not in url]

    assert outside == []
