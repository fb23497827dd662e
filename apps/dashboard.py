"""A live orders dashboard: a table and a chart that refresh when the data changes.

Run with ``panel serve apps/dashboard.py``, then write changes from another
shell with ``python apps/dashboard_feed.py``. The database path comes from
``PANEL_PUSHER_DASHBOARD_DB`` (default: ``dashboard.sqlite3`` in the user's
data directory). ``?mode=poll`` opens the page in timer-polling mode.
"""

from __future__ import annotations

import html

import panel as pn
from dashboard_page import DashboardPage
from dashboard_store import OrderStore
from sqlite_store import StoreError

pn.extension("tabulator", notifications=True)


@pn.cache
def _store() -> OrderStore:
    # One store per process, so that its read counter covers every page of the process.
    store = OrderStore()
    store.initialize()
    return store


def _page() -> pn.viewable.Viewable:
    try:
        store = _store()
    except StoreError as error:
        return pn.pane.Alert(html.escape(str(error)), alert_type="danger")

    mode = pn.state.session_args.get("mode", [b"push"])[0].decode("utf-8", "replace")
    page = DashboardPage(store=store, user=pn.state.user or "dashboard")
    if mode in ("push", "poll"):
        page.mode = mode

    return page


# A plain header rather than a template: templates load fonts from the internet,
# and these apps must work on a machine without it.
HEADER = pn.pane.HTML(
    "<h1 style='margin: 0; font-size: 26px'>panel_pusher live orders</h1>",
    styles={"background": "#0072b5", "color": "white", "padding": "14px 24px"},
    sizing_mode="stretch_width",
    margin=0,
)

pn.Column(HEADER, _page(), sizing_mode="stretch_width", margin=0).servable(title="panel_pusher live orders")
