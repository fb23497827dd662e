"""`panel serve apps/chat.py --num-procs 2`: pages on different processes see each other."""

from __future__ import annotations

import urllib.request

import pytest
from browser_support import child_environment, database_environment, free_port, local_context, shadow_text
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Maximum number of extra pages opened while looking for one served by the second process.
MAX_PAGES = 12


@pytest.fixture(scope="module")
def app_env(work_dir):
    """Use the embedded server: no Pusher settings, only a free port for it.

    The first app process that finds nothing on the port starts the server,
    and the other finds it there.
    """
    return child_environment(PANEL_PUSHER_PORT=str(free_port()), **database_environment(work_dir))


def open_named(chromium, url: str, name: str):
    context = local_context(chromium)
    page = context.new_page()
    page.goto(url)
    page.get_by_placeholder("Name shown with your messages").fill(name)
    page.get_by_role("button", name="Join the chat").click()
    expect(page.locator(".pp-badge:visible")).to_have_text("live", timeout=15_000)
    return context, page


def process_of(page) -> str:
    return shadow_text(page.locator(".process-id")).split()[-1]


def test_pages_on_two_processes(chromium, serve, app_env):
    chat = serve("chat", ["--num-procs", "2"])
    contexts = []

    try:
        first_context, first = open_named(chromium, chat.url, "ann")
        contexts.append(first_context)
        second = None
        for index in range(MAX_PAGES):
            context, page = open_named(chromium, chat.url, "bob")
            contexts.append(context)
            if process_of(page) != process_of(first):
                second = page
                break

        assert second is not None, f"all {MAX_PAGES + 1} pages came from process {process_of(first)}"

        first.get_by_placeholder("Write a message and press Enter").fill("across processes")
        first.get_by_placeholder("Write a message and press Enter").press("Enter")
        expect(second.get_by_text("across processes", exact=True)).to_have_count(1, timeout=15_000)

        port = app_env["PANEL_PUSHER_PORT"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200

        second.get_by_placeholder("Write a message and press Enter").fill("and back")
        second.get_by_placeholder("Write a message and press Enter").press("Enter")
        expect(first.get_by_text("and back", exact=True)).to_have_count(1, timeout=15_000)
    finally:
        for context in contexts:
            context.close()
