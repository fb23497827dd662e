"""The live orders dashboard of one Panel session, with push and timer-polling modes.

In push mode the page reads the store only when a ``refresh`` notification
arrives, through ``single_flight`` so that all pages of a process that react to
the same notification share one read. In poll mode it reads on a timer, as a
dashboard without push would. The counters on the page show the difference.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import statistics

import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure
from dashboard_store import STATUSES, OrderBook, OrderStore, Snapshot
from sqlite_store import StoreError

from panel_pusher import Notification, NotifyError, NotifyListen, anotify, single_flight

logger = logging.getLogger(__name__)

STATUS_COLORS = ("#4c78a8", "#54a24b", "#f58518", "#72b7b2", "#e45756")

# Delays kept for the mean shown on the page.
DELAY_WINDOW = 50


def _orders_frame(snapshot: Snapshot) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [order.id for order in snapshot.orders],
            "customer": [order.customer for order in snapshot.orders],
            "status": [order.status for order in snapshot.orders],
            "amount": [order.amount for order in snapshot.orders],
            "updated by": [order.updated_by for order in snapshot.orders],
            "updated at": [order.updated_at.strftime("%H:%M:%S") for order in snapshot.orders],
        }
    )


class DashboardPage(pn.viewable.Viewer):
    """A table and a chart of the orders that refresh on push or on a timer.

    Example::

        store = OrderStore()
        store.initialize()
        DashboardPage(store=store, user="ann").servable()
    """

    mode = param.Selector(default="push", objects=["push", "poll"], doc="""
        How the page learns about changes: a notification (push) or a timer (poll).""")

    poll_interval = param.Number(default=2.0, bounds=(0.5, 60.0), doc="""
        Seconds between two reads of the store in poll mode.""")

    user = param.String(default="dashboard", doc="""
        Name recorded with the changes made from this page.""")

    def __init__(self, *, store: OrderStore, **params):
        super().__init__(**params)
        self._store = store
        self._orders = OrderBook()

        # Version of the data shown, and the page's own counters.
        self._version: int | None = None
        self._refetches = 0
        self._delays_ms: list[float] = []
        self._poll_callback = None

        self._build_widgets()
        self._refresh(record_delay=False)

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # Building the page

    def _build_widgets(self) -> None:
        self._listener = NotifyListen(object=self._orders, actions={"refresh": self._on_push})
        self._alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")

        self._mode_toggle = pn.widgets.RadioButtonGroup.from_param(self.param.mode, button_type="primary")
        self._interval = pn.widgets.FloatInput.from_param(
            self.param.poll_interval, name="Poll every (seconds)", width=160
        )
        self.param.watch(self._on_mode, ["mode", "poll_interval"])

        self._last_updated = pn.pane.Markdown("", css_classes=["last-updated"])
        self._counters = pn.pane.Markdown("", css_classes=["counters"])

        self._table = pn.widgets.Tabulator(
            pd.DataFrame(), disabled=True, show_index=False, height=360,
            sorters=[{"field": "id", "dir": "desc"}],
            sizing_mode="stretch_width", layout="fit_data_stretch",
        )

        self._chart_source = ColumnDataSource(
            {"status": list(STATUSES), "amount": [0.0] * len(STATUSES), "color": list(STATUS_COLORS)}
        )
        chart = figure(
            x_range=list(STATUSES), height=300, title="Amount by status",
            toolbar_location=None, sizing_mode="stretch_width",
        )
        chart.vbar(x="status", top="amount", width=0.7, color="color", source=self._chart_source)
        chart.y_range.start = 0
        self._chart = pn.pane.Bokeh(chart, sizing_mode="stretch_width")

        self._customer = pn.widgets.TextInput(name="Customer", placeholder="Acme", width=180)
        self._amount = pn.widgets.FloatInput(name="Amount", value=100.0, width=120)
        self._add_button = pn.widgets.Button(name="Add order", button_type="primary", align="end")
        self._add_button.on_click(self._on_add)
        self._order_id = pn.widgets.IntInput(name="Order id", value=1, width=100, css_classes=["order-id"])
        self._advance_button = pn.widgets.Button(name="Advance status", align="end")
        self._advance_button.on_click(self._on_advance)

        self._layout = pn.Column(
            pn.Row(self._mode_toggle, self._interval, self._listener),
            self._alert,
            self._last_updated,
            self._counters,
            pn.Row(self._table, self._chart, sizing_mode="stretch_width"),
            pn.Row(self._customer, self._amount, self._add_button, self._order_id, self._advance_button),
            sizing_mode="stretch_width",
        )

    # Reading

    def _on_push(self, notification: Notification | None = None) -> None:
        if self.mode != "push":
            return

        if notification is None:
            self._refresh()
            return

        # All pages of this process that react to the same notification share one read.
        key = ("orders", notification.message_id)
        self._refresh(loader=lambda: single_flight(key, self._store.load))

    def _on_poll(self) -> None:
        self._refresh()

    def _refresh(self, *, loader=None, record_delay: bool = True) -> None:
        try:
            snapshot = (loader or self._store.load)()
        except StoreError as error:
            self._show_error(str(error))
            return

        self._refetches += 1
        self._alert.visible = False

        if snapshot.version != self._version:
            self._apply(snapshot, record_delay=record_delay and self._version is not None)
        self._render_counters()

    def _apply(self, snapshot: Snapshot, *, record_delay: bool) -> None:
        self._version = snapshot.version
        self._table.value = _orders_frame(snapshot)
        totals = snapshot.totals_by_status()
        self._chart_source.data = {
            "status": list(totals),
            "amount": list(totals.values()),
            "color": list(STATUS_COLORS),
        }
        self._last_updated.object = (
            f"**Last updated** {snapshot.changed_at:%H:%M:%S} UTC by "
            f"**{html.escape(snapshot.changed_by)}** (version {snapshot.version})"
        )

        if record_delay:
            # The change time comes from the writer's clock, so this assumes one machine's clock.
            delay = (dt.datetime.now(dt.timezone.utc) - snapshot.changed_at).total_seconds() * 1000
            self._delays_ms = (self._delays_ms + [delay])[-DELAY_WINDOW:]

    def _render_counters(self) -> None:
        if self._delays_ms:
            delay = (
                f"last {self._delays_ms[-1]:,.0f} ms, mean {statistics.fmean(self._delays_ms):,.0f} ms "
                f"over {len(self._delays_ms)} changes"
            )
        else:
            delay = "no change seen yet"

        self._counters.object = (
            f"Mode **{self.mode}** · reads by this page **{self._refetches}** · "
            f"store reads by this process **{self._store.reads}** · "
            f"delay from change to screen: {delay}"
        )

    def _on_mode(self, event=None) -> None:
        if self._poll_callback is not None:
            self._poll_callback.stop()
            self._poll_callback = None

        if self.mode == "poll":
            self._poll_callback = pn.state.add_periodic_callback(
                self._on_poll, period=int(self.poll_interval * 1000)
            )
        else:
            self._refresh(record_delay=False)

        self._render_counters()

    # Writing

    def _on_add(self, event=None) -> None:
        try:
            self._store.add_order(self._customer.value_input or self._customer.value, self._amount.value, user=self.user)
        except (ValueError, StoreError) as error:
            self._show_error(str(error))
            return

        self._after_write()

    def _on_advance(self, event=None) -> None:
        try:
            self._store.advance_status(self._order_id.value, user=self.user)
        except (ValueError, StoreError) as error:
            self._show_error(str(error))
            return

        self._after_write()

    def _after_write(self) -> None:
        self._alert.visible = False

        # In push mode this page refreshes from its own notification, like every other page.
        pn.state.execute(self._notify_change)
        if self.mode == "poll":
            self._refresh()

    async def _notify_change(self) -> None:
        try:
            await anotify(self._orders, "refresh", user=self.user)
        except NotifyError as error:
            logger.warning("Notify after a dashboard write failed: %s", error)
            self._show_error(f"Saved, but other pages were not told ({error}).", alert_type="warning")
            self._refresh()

    def _show_error(self, text: str, alert_type: str = "danger") -> None:
        self._alert.alert_type = alert_type
        self._alert.object = html.escape(text)
        self._alert.visible = True
