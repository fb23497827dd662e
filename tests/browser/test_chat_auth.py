"""The chat behind Panel's basic authentication takes the user name from the login."""

from __future__ import annotations

import pytest
from browser_support import local_context
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Test-only credentials for a server on 127.0.0.1 that this module starts.
PASSWORD = "chat-test-password"


@pytest.fixture(scope="module")
def chat(serve):
    return serve("chat", ["--basic-auth", PASSWORD, "--cookie-secret", "chat-test-cookie-secret"])


def test_login_name_used_without_prompt(chromium, chat):
    context = local_context(chromium)
    try:
        page = context.new_page()
        page.goto(chat.url)
        page.locator("input[name=username]").fill("alice")
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("input[name=password]").press("Enter")

        expect(page.get_by_text("Signed in as alice")).to_be_visible(timeout=15_000)
        expect(page.get_by_placeholder("Name shown with your messages")).to_have_count(0)
        expect(page.locator(".pp-badge:visible")).to_have_text("live", timeout=15_000)
    finally:
        context.close()
