"""NotifyListen in a real Chromium page: the badge turns live and a notify rerenders the page."""

from __future__ import annotations

import threading
from pathlib import Path

import panel as pn
import pytest

from panel_pusher import NotifyListen

from .models import Room
from .support import notify_from_other_process, panel_server

CHROMIUM = Path("/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium not found at {CHROMIUM}"),
]


def in_browser(scenario) -> None:
    """Run ``scenario(page)`` in a fresh Chromium, on a thread of its own.

    Playwright's sync API allows one instance per thread, and the browser
    tests elsewhere keep one open on the main thread for the whole session.
    """
    from playwright.sync_api import sync_playwright

    failure: list[BaseException] = []

    def run() -> None:
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    scenario(browser.new_page())
                finally:
                    browser.close()
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=run, name="playwright")
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the browser scenario did not finish"
    if failure:
        raise failure[0]


def room_page(authorize=None):
    counter = {"refreshes": 0}

    def app():
        view = pn.pane.Markdown("refreshes: 0", css_classes=["refreshes"])

        def reload(notification):
            counter["refreshes"] += 1
            view.object = f"refreshes: {counter['refreshes']} by {notification.user}"

        listener = NotifyListen(object=Room(id=21), actions={"refresh": reload}, authorize=authorize)
        return pn.Column(listener, view)

    return app


def test_browser_page_rerenders_on_notify(settings):
    def scenario(page):
        page.goto(f"http://127.0.0.1:{port}/app")
        page.wait_for_selector(".pp-badge.pp-live", timeout=20_000)

        result = notify_from_other_process(settings, "Room", 21, "refresh", "--user", "carol")
        assert result.returncode == 0, result.stderr

        # Playwright's text locators look inside Panel's shadow roots.
        page.get_by_text("refreshes: 1 by carol").wait_for(timeout=20_000)

    with panel_server({"app": room_page()}) as port:
        in_browser(scenario)


def test_browser_denied_page_shows_forbidden(settings):
    def scenario(page):
        page.goto(f"http://127.0.0.1:{port}/app")
        page.wait_for_selector(".pp-badge.pp-forbidden", timeout=20_000)

    with panel_server({"app": room_page(authorize=lambda user, obj: False)}) as port:
        in_browser(scenario)
