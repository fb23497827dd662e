"""The chat page of one Panel session: name prompt, rooms, messages, typing and presence.

Every change goes to the store first and then to the room's channel as a
notification (``refresh``, ``typing`` or ``presence``). The listeners of the
other pages run the matching callback, which reads the new state from the
store. The page that made a change updates itself from what it wrote, so it
never refetches its own change.
"""

from __future__ import annotations

import functools
import html
import logging
import os
import time
from collections.abc import Callable

import panel as pn
import param
from chat_store import (
    PRESENCE_HEARTBEAT,
    TYPING_MAX_AGE,
    ChatStore,
    Lobby,
    Message,
    Room,
    clean_user_name,
)
from sqlite_store import StoreError

from panel_pusher import Notification, NotifyError, NotifyListen, anotify, notify

logger = logging.getLogger(__name__)

# Minimum seconds between two "typing" notifications from one page.
TYPING_NOTIFY_INTERVAL = 2.0

# Messages shown when a room opens; older ones stay in the database.
HISTORY_LIMIT = 200


def _typing_text(names: list[str]) -> str:
    if not names:
        return ""
    if len(names) == 1:
        return f"*{names[0]} is typing...*"
    return f"*{', '.join(names[:-1])} and {names[-1]} are typing...*"


class ChatPage(pn.viewable.Viewer):
    """One user's chat page; create one per session.

    Example::

        store = ChatStore()
        store.initialize()
        ChatPage(store=store).servable()
    """

    user = param.String(default=None, allow_None=True, doc="""
        Name shown on this page's messages; asked for on the page when None.""")

    room = param.ClassSelector(class_=Room, default=None, allow_None=True, doc="""
        Room shown now.""")

    def __init__(self, *, store: ChatStore, requested_room: str | None = None, **params):
        super().__init__(**params)
        self._store = store
        self._requested_room = requested_room
        self._session_id = self._current_session_id()

        # Rooms by id, for titles and buttons.
        self._rooms: dict[int, Room] = {}
        self._room_buttons: dict[int, pn.widgets.Button] = {}

        # One listener per joined room, kept in the layout so that they live as long as the page.
        self._listeners: dict[int, NotifyListen] = {}

        # Ids of messages shown in the feed, and the highest id read from the store.
        self._shown_ids: set[int] = set()
        self._fetched_up_to = 0

        # Message ids of notifications this page sent, so that it skips its own.
        self._sent_notifications: set[str] = set()

        # Typing users of the current room and when each entry expires (time.time()).
        self._typing_until: dict[str, float] = {}
        self._last_typing_notify = 0.0

        self._build_widgets()
        self._layout = pn.Column(self._name_form, sizing_mode="stretch_width")

        if self.user:
            self._start()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # Building the page

    def _build_widgets(self) -> None:
        self._alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")

        self._name_input = pn.widgets.TextInput(name="Your name", placeholder="Name shown with your messages")
        self._name_button = pn.widgets.Button(name="Join the chat", button_type="primary")
        self._name_button.on_click(self._on_name_entered)
        self._name_input.param.watch(self._on_name_entered, "enter_pressed")
        self._name_form = pn.Column(
            "## Welcome to the chat",
            "Pick a name for this session. Other people in the room see it with your messages.",
            self._name_input,
            self._name_button,
            self._alert,
            width=420,
        )

        self._lobby_listener = NotifyListen(
            object=Lobby(), actions={"refresh": self._on_rooms_changed}, show_status=True
        )
        self._room_list = pn.Column(sizing_mode="stretch_width")
        self._new_room_input = pn.widgets.TextInput(placeholder="New room name", sizing_mode="stretch_width")
        self._new_room_button = pn.widgets.Button(name="Create room", sizing_mode="stretch_width")
        self._new_room_button.on_click(self._on_create_room)
        self._new_room_input.param.watch(self._on_create_room, "enter_pressed")
        self._presence = pn.pane.Markdown("", sizing_mode="stretch_width", css_classes=["presence"])
        self._listener_row = pn.Row(height=30, sizing_mode="stretch_width")
        self._signed_in = pn.pane.Markdown("", css_classes=["signed-in"])
        # The process id distinguishes the pages of `panel serve --num-procs N`.
        self._process = pn.pane.Markdown(f"Served by process {os.getpid()}", css_classes=["process-id"])

        self._title = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["room-title"])
        self._feed = pn.chat.ChatFeed(
            sizing_mode="stretch_width", height=420, show_activity_dot=False, auto_scroll_limit=400
        )
        self._typing = pn.pane.Markdown("", height=24, sizing_mode="stretch_width", css_classes=["typing"])
        self._message_input = pn.widgets.TextInput(
            placeholder="Write a message and press Enter", sizing_mode="stretch_width"
        )
        self._send_button = pn.widgets.Button(name="Send", button_type="primary", width=90)
        self._send_button.on_click(self._on_send)
        self._message_input.param.watch(self._on_send, "enter_pressed")
        self._message_input.param.watch(self._on_keystroke, "value_input")

    def _chat_layout(self) -> pn.viewable.Viewable:
        sidebar = pn.Column(
            self._signed_in,
            self._lobby_listener,
            "### Rooms",
            self._room_list,
            self._new_room_input,
            self._new_room_button,
            "### In this room",
            self._presence,
            self._listener_row,
            self._process,
            width=260,
        )
        main = pn.Column(
            self._alert,
            self._title,
            self._feed,
            self._typing,
            pn.Row(self._message_input, self._send_button, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        return pn.Row(sidebar, main, sizing_mode="stretch_width")

    # Starting the session

    def _on_name_entered(self, event=None) -> None:
        try:
            self.user = clean_user_name(self._name_input.value_input or self._name_input.value)
        except ValueError as error:
            self._show_error(str(error))
            return

        self._start()

    def _start(self) -> None:
        self._hide_error()
        self._signed_in.object = f"Signed in as **{html.escape(self.user)}**"

        if pn.state.curdoc is not None:
            pn.state.on_session_destroyed(self._on_session_destroyed)
            pn.state.add_periodic_callback(self._expire_typing, period=1000)
            pn.state.add_periodic_callback(self._heartbeat, period=int(PRESENCE_HEARTBEAT * 1000))

        # The widgets get their rooms and messages before the layout is rendered. Changing
        # freshly rendered buttons in the same callback left some sessions with Panel's
        # stylesheets pointing at its CDN instead of this server.
        try:
            self._load_rooms()
            for room_id in self._store.joined_room_ids(self.user):
                if room_id in self._rooms:
                    self._listen(room_id)
            self._enter_room(self._initial_room_id())
        except StoreError as error:
            self._show_error(str(error))
        finally:
            self._layout[:] = [self._chat_layout()]

    def _initial_room_id(self) -> int:
        fallback = next(iter(self._rooms))
        if self._requested_room is None:
            return fallback

        try:
            room_id = int(self._requested_room)
        except ValueError:
            room_id = None

        if room_id not in self._rooms:
            self._show_error(
                f"Room {self._requested_room!r} does not exist. "
                f"Showing #{self._rooms[fallback].title}; pick another room on the left."
            )
            return fallback

        return room_id

    # Rooms

    def _load_rooms(self) -> None:
        for room in self._store.list_rooms():
            if room.id in self._rooms:
                continue

            self._rooms[room.id] = room
            button = pn.widgets.Button(name=f"# {room.title}", sizing_mode="stretch_width")
            button.on_click(lambda event, room_id=room.id: self._on_pick_room(room_id))
            # Shown by _update_room_buttons, after its name and type are final.
            self._room_buttons[room.id] = button

    def _on_pick_room(self, room_id: int) -> None:
        if self.room is not None and room_id == self.room.id:
            return

        try:
            self._enter_room(room_id)
        except StoreError as error:
            self._show_error(str(error))

    def _enter_room(self, room_id: int) -> None:
        room = self._store.get_room(room_id)
        previous = self.room

        self._store.join(room.id, self.user)
        self._store.set_presence(self._session_id, room.id, self.user)
        self._listen(room.id)

        self.room = room
        self._title.object = f"<h2># {html.escape(room.title)}</h2>"
        self._typing_until.clear()
        self._typing.object = ""
        self._shown_ids.clear()
        self._fetched_up_to = 0
        self._feed.clear()
        self._append_messages(self._store.messages(room.id, limit=HISTORY_LIMIT))
        self._refresh_presence(room.id)
        self._update_room_buttons()

        if pn.state.location is not None:
            pn.state.location.update_query(room=room.id)

        if previous is not None:
            self._send(previous, "presence")
        self._send(room, "presence")

    def _on_create_room(self, event=None) -> None:
        try:
            room = self._store.create_room(self._new_room_input.value_input or "", user=self.user)
        except (ValueError, StoreError) as error:
            self._show_error(str(error))
            return

        self._new_room_input.value = ""
        self._new_room_input.value_input = ""
        self._hide_error()
        self._load_rooms()
        self._send(Lobby(), "refresh")
        self._on_pick_room(room.id)

    def _on_rooms_changed(self, notification: Notification | None = None) -> None:
        try:
            self._load_rooms()
            self._update_room_buttons()
        except StoreError as error:
            self._show_error(str(error))

    def _update_room_buttons(self, unread: dict[int, int] | None = None) -> None:
        if unread is None:
            unread = self._store.unread_counts(self.user)

        for room_id, button in self._room_buttons.items():
            title = f"# {self._rooms[room_id].title}"
            count = unread.get(room_id, 0)
            current = self.room is not None and room_id == self.room.id
            button.name = f"{title} ({count})" if count and not current else title
            button.button_type = "primary" if current else "default"

        # New buttons join the layout only now: changing a button in the callback that
        # rendered it left Panel's stylesheets of the whole page pointing at its CDN.
        if len(self._room_list.objects) != len(self._room_buttons):
            self._room_list.objects = list(self._room_buttons.values())

    # Listening

    def _listen(self, room_id: int) -> None:
        if room_id in self._listeners:
            return

        listener = NotifyListen(
            object=Room(id=room_id, title=self._rooms[room_id].title),
            actions={
                "refresh": self._callback(self._on_refresh, room_id),
                "typing": self._callback(self._on_typing, room_id),
                "presence": self._callback(self._on_presence, room_id),
            },
            show_status=False,
        )
        self._listeners[room_id] = listener
        self._listener_row.append(listener)

    def _callback(self, method: Callable[[int, Notification | None], None], room_id: int):
        def callback(notification: Notification | None = None) -> None:
            if notification is not None and notification.message_id in self._sent_notifications:
                return
            try:
                method(room_id, notification)
            except StoreError as error:
                self._show_error(str(error))

        callback.__name__ = f"{method.__name__}_{room_id}"
        return callback

    def _on_refresh(self, room_id: int, notification: Notification | None) -> None:
        if self.room is not None and room_id == self.room.id:
            self._catch_up()
            return

        unread = self._store.unread_counts(self.user)
        self._update_room_buttons(unread)

        if notification is None or notification.reconnect or notification.user == self.user:
            return
        if pn.state.notifications is not None:
            pn.state.notifications.info(
                f"New message from {notification.user} in #{self._rooms[room_id].title}",
                duration=5000,
            )

    def _catch_up(self) -> None:
        messages = self._store.messages(self.room.id, after_id=self._fetched_up_to, limit=HISTORY_LIMIT)
        self._append_messages(messages)

        for message in messages:
            self._typing_until.pop(message.author, None)
        self._render_typing()

    def _on_typing(self, room_id: int, notification: Notification | None) -> None:
        if self.room is None or room_id != self.room.id:
            return

        typing = self._store.typing_users(room_id)
        typing.pop(self.user, None)
        self._typing_until = {name: typed_at + TYPING_MAX_AGE for name, typed_at in typing.items()}
        self._render_typing()

    def _on_presence(self, room_id: int, notification: Notification | None) -> None:
        if self.room is not None and room_id == self.room.id:
            self._refresh_presence(room_id)

    # Sending

    def _on_send(self, event=None) -> None:
        if self.room is None:
            return
        text = self._message_input.value_input or ""

        try:
            message = self._store.post_message(self.room.id, self.user, text)
        except (ValueError, StoreError) as error:
            # The text stays in the input, so nothing typed is lost.
            self._show_error(str(error))
            return

        self._hide_error()
        self._message_input.value = ""
        self._message_input.value_input = ""
        self._last_typing_notify = 0.0
        self._append_messages([message], from_store=False)
        self._send(self.room, "refresh")

    def _on_keystroke(self, event) -> None:
        if self.room is None or not event.new:
            return

        now = time.time()
        if now - self._last_typing_notify < TYPING_NOTIFY_INTERVAL:
            return
        self._last_typing_notify = now

        try:
            self._store.set_typing(self.room.id, self.user, now=now)
        except StoreError as error:
            logger.warning("Typing state not saved: %s", error)
            return
        self._send(self.room, "typing", quiet=True)

    def _send(self, obj: param.Parameterized, action: str, *, quiet: bool = False) -> None:
        # Sent from a task, so the page's event loop does not wait for the HTTP request.
        # The task awaits the send, so a failure still shows on the page.
        pn.state.execute(functools.partial(self._send_async, obj, action, quiet=quiet))

    async def _send_async(self, obj: param.Parameterized, action: str, *, quiet: bool) -> None:
        try:
            notification = await anotify(obj, action, user=self.user, exclude_session=True)
        except NotifyError as error:
            logger.warning("Notify %r on %s %s failed: %s", action, type(obj).__name__, obj.id, error)
            if not quiet:
                self._show_error(
                    f"Saved, but other pages were not told ({error}). "
                    f"They catch up when their connection comes back.",
                    alert_type="warning",
                )
            return

        self._sent_notifications.add(notification.message_id)

    # Rendering

    def _append_messages(self, messages: list[Message], *, from_store: bool = True) -> None:
        new = [message for message in messages if message.id not in self._shown_ids]

        for message in new:
            self._shown_ids.add(message.id)
            self._feed.append(
                pn.chat.ChatMessage(
                    html.escape(message.body),
                    user=message.author,
                    timestamp=message.created_at,
                    timestamp_tz="UTC",
                    timestamp_format="%H:%M:%S UTC",
                    show_reaction_icons=False,
                    show_copy_icon=False,
                    show_edit_icon=False,
                )
            )

        if from_store and messages:
            self._fetched_up_to = max(self._fetched_up_to, messages[-1].id)

        if messages and self.room is not None:
            self._store.mark_read(self.room.id, self.user, max(self._shown_ids))

    def _refresh_presence(self, room_id: int) -> None:
        names = self._store.present_users(room_id)
        self._presence.object = "\n".join(f"- {html.escape(name)}" for name in names) or "*nobody*"

    def _render_typing(self) -> None:
        self._typing.object = _typing_text(sorted(self._typing_until))

    def _expire_typing(self) -> None:
        now = time.time()
        expired = [name for name, until in self._typing_until.items() if until <= now]

        for name in expired:
            del self._typing_until[name]
        if expired:
            self._render_typing()

    def _heartbeat(self) -> None:
        if self.room is None:
            return
        try:
            self._store.set_presence(self._session_id, self.room.id, self.user)
        except StoreError as error:
            logger.warning("Presence heartbeat failed: %s", error)

    def _show_error(self, text: str, alert_type: str = "danger") -> None:
        self._alert.alert_type = alert_type
        self._alert.object = html.escape(text)
        self._alert.visible = True

    def _hide_error(self) -> None:
        self._alert.visible = False

    # Session end

    @staticmethod
    def _current_session_id() -> str:
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            return pn.state.curdoc.session_context.id
        return f"local-{id(object())}"

    def _on_session_destroyed(self, session_context) -> None:
        try:
            room_id = self._store.clear_presence(self._session_id)
        except StoreError as error:
            logger.warning("Presence of session %s not cleared: %s", self._session_id, error)
            return

        if room_id is not None and room_id in self._rooms:
            try:
                notify(self._rooms[room_id], "presence", user=self.user)
            except NotifyError as error:
                logger.warning("Presence notify after session end failed: %s", error)
