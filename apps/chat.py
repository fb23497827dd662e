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


# A plain header rather than a template: templates load fonts from the internet,
# and these apps must work on a machine without it.
HEADER = pn.pane.HTML(
    "<h1 style='margin: 0; font-size: 26px'>panel_pusher chat</h1>",
    styles={"background": "#0072b5", "color": "white", "padding": "14px 24px"},
    sizing_mode="stretch_width",
    margin=0,
)

pn.Column(HEADER, _page(), sizing_mode="stretch_width", margin=0).servable(title="panel_pusher chat")
