"""Stylesheet URLs of Panel sessions served after sessions with a NotifyListen have ended."""

from __future__ import annotations

import re
import urllib.request
from typing import Any

import panel as pn
from bokeh.models import ImportedStyleSheet
from bokeh.util.token import get_session_id
from panel.io.resources import CDN_DIST

from panel_pusher import NotifyListen

from .models import Room
from .support import close_session, in_thread, panel_server, wait_until

# Milliseconds a session without a connection lives. Panel 1.9.4 sets the
# local stylesheet URLs only while it renders a session's HTML page, so a
# session that expires before its websocket connects is created again with
# CDN URLs. Here the websocket connects within milliseconds of the page
# request, and closed sessions still end quickly.
SESSION_LIFETIME_MS = 1000

SESSIONS_BEFORE = 3


def open_page(port: int) -> Any:
    """Request the app's HTML page, then connect to its session as the page's script would."""
    url = f"http://127.0.0.1:{port}/app"
    with urllib.request.urlopen(url, timeout=10) as response:
        html = response.read().decode()

    match = re.search(r'"token":\s*"([^"]+)"', html)
    assert match, "no session token in the page"
    session_id = get_session_id(match.group(1))

    from bokeh.client import pull_session

    return in_thread(lambda: pull_session(session_id=session_id, url=url))


def stylesheet_urls(session: Any) -> list[str]:
    return [model.url for model in session.document.models if isinstance(model, ImportedStyleSheet)]


def test_later_session_gets_local_stylesheets(settings):
    listeners: list[NotifyListen] = []

    def app():
        listener = NotifyListen(object=Room(id=5), actions={"refresh": lambda: None})
        listeners.append(listener)
        return pn.Column(listener, pn.widgets.Button(label="go"), pn.pane.Markdown("text"))

    with panel_server(
        {"app": app},
        check_unused_sessions_milliseconds=100,
        unused_session_lifetime_milliseconds=SESSION_LIFETIME_MS,
    ) as port:
        for _ in range(SESSIONS_BEFORE):
            session = open_page(port)
            assert wait_until(lambda: listeners[-1].status == "live"), listeners[-1].status
            close_session(session)

        assert wait_until(lambda: all(listener.status == "offline" for listener in listeners))

        later = open_page(port)
        try:
            urls = stylesheet_urls(later)
        finally:
            close_session(later)

    # One app run per page request: no session expired and was created again.
    assert len(listeners) == SESSIONS_BEFORE + 1
    assert urls, "the session has no imported stylesheets to check"
    assert [url for url in urls if url.startswith(CDN_DIST)] == []
