"""The chat in real Chromium: two users, one `panel serve` process, one Pusher server."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from browser_support import SESSION_CHECK_MS, SESSION_LIFETIME_MS, local_context
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"

NAME_INPUT = "Name shown with your messages"

MESSAGE_INPUT = "Write a message and press Enter"

# Seconds to wait for something that push should deliver at once.
PUSH_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def chat(serve):
    return serve("chat")


@pytest.fixture
def open_chat(chromium, chat):
    """Return a function that opens the chat as a user in a fresh browser context."""
    contexts = []

    def open_page(name: str, query: str = ""):
        context = local_context(chromium, viewport={"width": 1200, "height": 760})
        contexts.append(context)
        page = context.new_page()
        page.goto(chat.url + query)

        page.get_by_placeholder(NAME_INPUT).fill(name)
        page.get_by_role("button", name="Join the chat").click()
        expect(page.get_by_placeholder(MESSAGE_INPUT)).to_be_visible()
        wait_live(page)
        return page

    yield open_page

    for context in contexts:
        context.close()


def wait_live(page) -> None:
    expect(page.locator(".pp-badge:visible")).to_have_text("live", timeout=PUSH_TIMEOUT_MS)


def send(page, text: str) -> None:
    box = page.get_by_placeholder(MESSAGE_INPUT)
    box.fill(text)
    box.press("Enter")


def messages_with(page, text: str):
    return page.get_by_text(text, exact=True)


def pick_room(page, title: str) -> None:
    page.get_by_role("button", name=f"# {title}", exact=False).first.click()
    expect(page.locator(".room-title")).to_have_text(f"# {title}")


def test_screenshot(open_chat):
    ann = open_chat("ann")
    bob = open_chat("bob")
    # A room of its own, so that the picture shows only this conversation.
    ann.get_by_placeholder("New room name").fill("dashboards")
    ann.get_by_role("button", name="Create room").click()
    expect(ann.locator(".room-title")).to_have_text("# dashboards")
    expect(bob.get_by_role("button", name="# dashboards")).to_be_visible(timeout=PUSH_TIMEOUT_MS)
    pick_room(bob, "dashboards")
    expect(ann.locator(".presence")).to_contain_text("bob", timeout=PUSH_TIMEOUT_MS)
    send(ann, "Is the dashboard still slow for you?")
    expect(messages_with(bob, "Is the dashboard still slow for you?")).to_be_visible(timeout=PUSH_TIMEOUT_MS)
    send(bob, "Not since it listens for changes instead of polling.")
    expect(messages_with(ann, "Not since it listens for changes instead of polling.")).to_be_visible(
        timeout=PUSH_TIMEOUT_MS
    )
    bob.get_by_placeholder(MESSAGE_INPUT).press_sequentially("Let me c", delay=30)
    expect(ann.locator(".typing")).to_have_text("bob is typing...", timeout=PUSH_TIMEOUT_MS)

    ann.screenshot(path=str(DOCS_DIR / "chat.png"))

    assert (DOCS_DIR / "chat.png").stat().st_size > 10_000


def test_name_asked_once(open_chat):
    page = open_chat("nora")

    pick_room(page, "random")
    pick_room(page, "general")

    expect(page.get_by_placeholder(NAME_INPUT)).to_have_count(0)
    expect(page.get_by_text("Signed in as nora")).to_be_visible()


def test_empty_name_rejected(chromium, chat):
    context = local_context(chromium)
    try:
        page = context.new_page()
        page.goto(chat.url)

        page.get_by_role("button", name="Join the chat").click()

        expect(page.get_by_text("Enter a name to join the chat.")).to_be_visible()
        expect(page.get_by_placeholder(NAME_INPUT)).to_be_visible()
    finally:
        context.close()


def test_message_reaches_other_page_once(open_chat):
    ann = open_chat("ann")
    bob = open_chat("bob")

    send(ann, "hello from ann")
    expect(messages_with(bob, "hello from ann")).to_have_count(1, timeout=PUSH_TIMEOUT_MS)

    # Once ann's page shows the reply, it has processed every event sent before it.
    send(bob, "hi ann")
    expect(messages_with(ann, "hi ann")).to_have_count(1, timeout=PUSH_TIMEOUT_MS)
    expect(messages_with(ann, "hello from ann")).to_have_count(1)
    expect(messages_with(bob, "hi ann")).to_have_count(1)


def test_typing_indicator_shows_and_clears(open_chat):
    ann = open_chat("ann")
    bob = open_chat("bob")

    bob.get_by_placeholder(MESSAGE_INPUT).press_sequentially("wri", delay=50)

    typing = ann.locator(".typing")
    expect(typing).to_have_text("bob is typing...", timeout=PUSH_TIMEOUT_MS)
    expect(bob.locator(".typing")).not_to_contain_text("bob")
    expect(typing).not_to_contain_text("bob", timeout=PUSH_TIMEOUT_MS)


def test_presence_lists_users_in_room(open_chat):
    ann = open_chat("ann")
    carl = open_chat("carl")

    presence = ann.locator(".presence")
    expect(presence).to_contain_text("carl", timeout=PUSH_TIMEOUT_MS)
    expect(carl.locator(".presence")).to_contain_text("ann")

    pick_room(carl, "random")

    expect(presence).not_to_contain_text("carl", timeout=PUSH_TIMEOUT_MS)


def test_presence_drops_closed_page(open_chat):
    ann = open_chat("ann")
    dora = open_chat("dora")
    presence = ann.locator(".presence")
    expect(presence).to_contain_text("dora", timeout=PUSH_TIMEOUT_MS)

    dora.context.close()

    expect(presence).not_to_contain_text("dora", timeout=PUSH_TIMEOUT_MS)


def test_toast_and_unread_for_other_room(open_chat):
    ann = open_chat("ann")
    pick_room(ann, "random")
    pick_room(ann, "general")
    bob = open_chat("bob")
    pick_room(bob, "random")

    send(bob, "over here in random")

    toast = ann.locator(".notyf__message", has_text="New message from bob in #random")
    expect(toast).to_have_count(1, timeout=PUSH_TIMEOUT_MS)
    expect(ann.get_by_role("button", name="# random (1)")).to_be_visible()

    pick_room(ann, "random")

    expect(messages_with(ann, "over here in random")).to_have_count(1)
    expect(ann.get_by_role("button", name="# random", exact=True)).to_be_visible()


def test_new_room_appears_in_other_page(open_chat):
    ann = open_chat("ann")
    bob = open_chat("bob")
    title = f"room-{int(time.time() * 1000) % 100000}"

    ann.get_by_placeholder("New room name").fill(title)
    ann.get_by_role("button", name="Create room").click()

    expect(ann.locator(".room-title")).to_have_text(f"# {title}")
    expect(bob.get_by_role("button", name=f"# {title}")).to_be_visible(timeout=PUSH_TIMEOUT_MS)


def test_empty_message_rejected(open_chat):
    ann = open_chat("ann")

    send(ann, "   ")

    expect(ann.get_by_text("The message is empty.", exact=False)).to_be_visible()


def test_long_message_rejected_and_kept(open_chat):
    ann = open_chat("ann")
    text = "x" * 2001

    send(ann, text)

    expect(ann.get_by_text("2,001 characters; the maximum is 2,000", exact=False)).to_be_visible()
    expect(ann.get_by_placeholder(MESSAGE_INPUT)).to_have_value(text)


def test_unknown_room_in_url(open_chat):
    page = open_chat("ann", "?room=999")

    expect(page.get_by_text("Room '999' does not exist.", exact=False)).to_be_visible()
    expect(page.locator(".room-title")).to_have_text("# general")


def test_locked_database_keeps_text(open_chat, app_env):
    ann = open_chat("ann")
    # Let the sessions of earlier tests end first. When they ended during the
    # lock, the error message once took more than 20 s to appear.
    time.sleep((SESSION_LIFETIME_MS + SESSION_CHECK_MS) / 1000)
    blocker = sqlite3.connect(app_env["PANEL_PUSHER_CHAT_DB"], isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        send(ann, "sent while locked")
        expect(ann.get_by_text("is locked by another program", exact=False)).to_be_visible(timeout=20_000)
        expect(ann.get_by_placeholder(MESSAGE_INPUT)).to_have_value("sent while locked")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    ann.get_by_placeholder(MESSAGE_INPUT).press("Enter")

    expect(messages_with(ann, "sent while locked")).to_have_count(1)
    expect(ann.get_by_text("is locked by another program", exact=False)).to_be_hidden()


def test_missing_database_reported(open_chat, app_env):
    ann = open_chat("ann")
    database = Path(app_env["PANEL_PUSHER_CHAT_DB"])
    moved = database.with_name(database.name + ".moved")
    database.rename(moved)
    try:
        send(ann, "sent while the file is gone")
        expect(ann.get_by_text("is missing", exact=False)).to_be_visible(timeout=PUSH_TIMEOUT_MS)
        expect(ann.get_by_placeholder(MESSAGE_INPUT)).to_have_value("sent while the file is gone")
        assert not database.exists()
    finally:
        moved.rename(database)

    ann.get_by_placeholder(MESSAGE_INPUT).press("Enter")

    expect(messages_with(ann, "sent while the file is gone")).to_have_count(1)


def test_catch_up_after_server_restart(open_chat, pusher_server):
    ann = open_chat("ann")
    bob = open_chat("bob")
    pick_room(ann, "random")
    pick_room(bob, "random")

    pusher_server.stop()
    expect(ann.locator(".pp-badge:visible")).not_to_have_text("live", timeout=PUSH_TIMEOUT_MS)
    send(bob, "sent while the server was down")
    expect(messages_with(bob, "sent while the server was down")).to_have_count(1)
    pusher_server.start()

    expect(messages_with(ann, "sent while the server was down")).to_have_count(1, timeout=60_000)
    wait_live(ann)
