"""Chat rooms that refresh in every open page when someone posts.

Run with ``panel serve apps/chat.py``. The database path comes from
``PANEL_PUSHER_CHAT_DB`` (default: ``chat.sqlite3`` in the user's data
directory, see ``sqlite_store.default_data_dir``); ``?room=ID`` in the URL
opens a room.
"""

from __future__ import annotations

import html

import panel as pn
from chat_page import ChatPage
from chat_store import ChatStore
from sqlite_store import StoreError

pn.extension(notifications=True)


@pn.cache
def _store() -> ChatStore:
    # One store per process: creating the tables and default rooms runs once.
    store = ChatStore()
    store.initialize()
    return store


def _page() -> pn.viewable.Viewable:
    try:
        store = _store()
    except StoreError as error:
        return pn.pane.Alert(html.escape(str(error)), alert_type="danger")

    requested = pn.state.session_args.get("room", [None])[0]
    if isinstance(requested, bytes):
        requested = requested.decode("utf-8", "replace")

    return ChatPage(store=store, user=pn.state.user, requested_room=requested)


pn.template.FastListTemplate(
    title="panel_pusher chat",
    main=[_page()],
    main_layout=None,
    theme_toggle=False,
).servable()
