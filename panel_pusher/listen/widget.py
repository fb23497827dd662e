"""NotifyListen: the Panel component that runs Python callbacks when its object changes."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from weakref import WeakSet
from typing import TYPE_CHECKING, Any

import panel as pn
import param
from panel.io.state import set_curdoc, state
from panel.util import edit_readonly
from panel.viewable import Viewer

from ..auth import is_authorized
from ..channels import channel_name, entity_of, object_id_of
from ..notification import Notification
from ..settings import PusherSettings, get_settings
from ..validation import validate_action_name, validate_channel_name
from . import hub as hub_module
from .coalesce import Coalescer
from .session import LoopTarget, SessionTarget, callback_loop, session_token, target_for_display

if TYPE_CHECKING:
    from bokeh.document import Document
    from bokeh.model import Model

logger = logging.getLogger(__name__)

STATUSES = ("connecting", "live", "reconnecting", "offline", "forbidden", "error")

# Coalescing key of the on_reconnect callback, apart from every action.
_RECONNECT_KEY = ("reconnect",)

# Attachment key of a listener started with start() outside any display.
_HEADLESS_KEY = "headless"

_BADGE_CSS = """
:host { font: 12px/1.4 system-ui, sans-serif; }
.pp-badge { display: inline-flex; align-items: center; gap: 4px; color: #555; }
.pp-badge::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #999; }
.pp-live::before { background: #2e9e44; }
.pp-connecting::before, .pp-reconnecting::before { background: #e0a200; }
.pp-offline::before { background: #999; }
.pp-forbidden::before, .pp-error::before { background: #c62828; }
"""


@dataclass(eq=False)
class _Attachment:
    """One display of the listener: its session, the user there and whether that user may listen."""

    target: SessionTarget

    user: Any

    allowed: bool

    # Token of the session, to skip notifications it sent with exclude_session.
    token: str | None


def _wants_argument(callback: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return True

    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        for p in signature.parameters.values()
    )


def _is_async(callback: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)
    )


class _StatusBadge(pn.pane.HTML):
    """The visible part of NotifyListen; rendering it into a document starts listening there."""

    def __init__(self, listener: NotifyListen, **params: Any) -> None:
        self._listener = listener
        # Document this badge was last rendered into.
        self._document: Document | None = None
        super().__init__(**params)

    def _get_model(
        self, doc: Document, root: Model | None = None, parent: Model | None = None, comm: Any = None
    ) -> Model:
        # Attach first, so that a status decided now (such as "forbidden")
        # is in the model from the start. A change made while the session
        # is still rendering may not reach the browser.
        self._document = doc
        pending = f"pending-{id(doc)}"
        self._listener._attach(root.ref["id"] if root is not None else pending, doc)
        model = super()._get_model(doc, root, parent, comm)
        if root is None:
            self._listener._rekey(pending, model.ref["id"])
        return model

    def _cleanup(self, root: Model | None = None) -> None:
        if root is not None:
            self._listener._detach(root.ref["id"])
        super()._cleanup(root)


class NotifyListen(Viewer):
    """
    Runs Python callbacks in this session when another session notifies a change of ``object``.

    Put it in a layout: while the page lives it listens on the object's
    channel, and for each notification runs the callbacks registered for its
    action, on the session's own event loop. It renders as a small status
    badge (hide it with ``show_status=False``).

    Reference: ``notify(obj, action)`` sends what it receives.

    Example::

        listener = NotifyListen(object=room, actions={"refresh": reload})

        @listener.on("typing")
        def show_typing(notification):
            typing.object = f"{notification.user} is typing"

        pn.Column(listener, messages)
    """

    object = param.Parameter(default=None, doc="""
        The object to listen to. Its channel comes from its entity name
        (class attribute pusher_entity, else the class name) and its primary
        key (the attribute named by pusher_id, else "id").""")

    actions = param.Dict(default={}, doc="""
        Callbacks per action name: a callable or a list of callables. A
        callback takes the Notification or no argument, and may be async.""")

    on_reconnect = param.Callable(default=None, doc="""
        Called once after the connection comes back from an outage, since
        events sent during it are lost. When None, every action's callbacks
        run once instead, with a Notification whose reconnect is True.""")

    show_status = param.Boolean(default=True, doc="""
        Whether to show the status badge.""")

    authorize = param.Callable(default=None, doc="""
        Hook (user, obj) -> bool deciding whether this session's user may
        listen to the object. None uses the process-wide hook (see
        panel_pusher.auth.set_authorize).""")

    entity = param.String(default=None, allow_None=True, doc="""
        Entity name overriding the object's pusher_entity.""")

    id_param = param.String(default=None, allow_None=True, doc="""
        Name of the attribute holding the primary key, overriding the
        object's pusher_id.""")

    channel = param.String(default=None, allow_None=True, doc="""
        Explicit channel name, used instead of the object's channel. It
        must be a valid Pusher channel name.""")

    settings = param.ClassSelector(class_=PusherSettings, default=None, doc="""
        Server settings; None uses the process default.""")

    status = param.Selector(default="offline", objects=list(STATUSES), readonly=True, doc="""
        connecting, live, reconnecting, offline (not displayed, or no
        server), forbidden (the authorize hook denied this session) or
        error (the server refused the connection or the subscription).""")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._lock = threading.RLock()
        # Callbacks added with on(), per action.
        self._registered: dict[str, list[Callable[..., Any]]] = {}
        # Displays of the listener, by root model id.
        self._attachments: dict[str, _Attachment] = {}
        self._coalescer: Coalescer[Notification] = Coalescer()
        # Hub and channel this listener is subscribed to, if any.
        self._hub: hub_module.ListenerHub | None = None
        self._subscribed: str | None = None
        self._hub_status = "connecting"
        self._channel = self._resolve_channel()
        self._check_actions(self.actions)
        # One badge per display, made on demand, so that listeners started
        # with start() stay small.
        self._badges: WeakSet[_StatusBadge] = WeakSet()

    def __panel__(self) -> _StatusBadge:
        # A badge per display keeps each pane in one document. One pane in
        # two notebook documents can make Bokeh raise "Models must be owned
        # by only a single document" when it is updated.
        badge = _StatusBadge(
            self, object=self._badge_html(), visible=self.show_status,
            margin=(0, 5), stylesheets=[_BADGE_CSS],
        )
        with self._lock:
            self._badges.add(badge)
        return badge

    # -- public API --------------------------------------------------------

    def on(self, action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Return a decorator that registers a callback for ``action`` (in addition to ``actions``)."""
        validate_action_name(action)

        def register(callback: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(callback):
                raise TypeError(f"callback for {action!r} must be callable, not {callback!r}")
            with self._lock:
                self._registered.setdefault(action, []).append(callback)
            return callback

        return register

    def callbacks(self, action: str) -> list[Callable[..., Any]]:
        """Return the callbacks that run for ``action``, in order."""
        given = self.actions.get(action, [])
        given = list(given) if isinstance(given, (list, tuple)) else [given]
        with self._lock:
            return given + list(self._registered.get(action, []))

    @property
    def channel_name(self) -> str | None:
        """The channel this listener listens on, or None without an object."""
        return self._channel

    def start(self) -> NotifyListen:
        """Listen without being displayed, running callbacks on a shared background loop; return self."""
        self._attach(_HEADLESS_KEY, None, LoopTarget(callback_loop()))
        return self

    def stop(self) -> None:
        """Stop listening everywhere; displayed copies show "offline"."""
        with self._lock:
            keys = list(self._attachments)
        for key in keys:
            self._detach(key)

    def recheck(self) -> None:
        """Run the authorize hook again for every display, for example after access was granted."""
        with self._lock:
            attachments = list(self._attachments.values())

        for attachment in attachments:
            with set_curdoc(attachment.target.document):
                attachment.allowed = is_authorized(self.authorize, attachment.user, self.object)

        self._sync()

    # -- param reactions ---------------------------------------------------

    @param.depends("object", "entity", "id_param", "channel", "settings", watch=True)
    def _object_changed(self) -> None:
        self._channel = self._resolve_channel()
        self._coalescer.clear()
        self.recheck()

    @param.depends("authorize", watch=True)
    def _authorize_changed(self) -> None:
        self.recheck()

    @param.depends("show_status", watch=True)
    def _show_status_changed(self) -> None:
        for badge in self._badge_list():
            with set_curdoc(badge._document):
                badge.visible = self.show_status

    @param.depends("actions", watch=True)
    def _actions_changed(self) -> None:
        self._check_actions(self.actions)

    @param.depends("status", watch=True)
    def _status_changed(self) -> None:
        html = self._badge_html()
        for badge in self._badge_list():
            # NOTE: in a Jupyter kernel, after the listener was displayed in
            # two cells, Bokeh can raise "Models must be owned by only a single
            # document" here (seen with Panel 1.9.4). The badge then keeps its
            # old text, but the status change itself goes through.
            try:
                with set_curdoc(badge._document):
                    badge.object = html
            except RuntimeError as error:
                logger.warning("Could not update a status badge to %r: %s", self.status, error)

    def _badge_list(self) -> list[_StatusBadge]:
        with self._lock:
            return list(self._badges)

    # -- attachments -------------------------------------------------------

    def _attach(self, key: str, doc: Document | None, target: SessionTarget | None = None) -> None:
        target = target or target_for_display(doc)
        user = None
        with set_curdoc(doc if doc is not None and doc.session_context is not None else None):
            if doc is not None and doc.session_context is not None:
                user = state.user
            allowed = is_authorized(self.authorize, user, self.object)

        attachment = _Attachment(target=target, user=user, allowed=allowed, token=session_token(doc))
        with self._lock:
            previous = self._attachments.get(key)
            self._attachments[key] = attachment

        if previous is not None:
            previous.target.close()

        if not allowed:
            logger.info("Listener on %s denied for user %r", self._channel, user)

        # NOTE: a notebook display has no session to destroy; it stops only
        # when Panel cleans up its model (comm closed) or on stop().
        if doc is not None and doc.session_context is not None:
            doc.on_session_destroyed(partial(_session_destroyed, self, doc))

        self._sync()

    def _rekey(self, old: str, new: str) -> None:
        with self._lock:
            attachment = self._attachments.pop(old, None)
            if attachment is not None:
                self._attachments[new] = attachment

    def _detach(self, key: str) -> None:
        with self._lock:
            attachment = self._attachments.pop(key, None)

        if attachment is None:
            return

        attachment.target.close()
        self._sync()

    def _primary(self) -> _Attachment | None:
        with self._lock:
            for attachment in self._attachments.values():
                if attachment.allowed and attachment.target.alive:
                    return attachment
        return None

    def _sync(self) -> None:
        """Subscribe or unsubscribe so that the hub matches the attachments and the channel."""
        primary = self._primary()
        target_channel = self._channel if primary is not None else None

        with self._lock:
            old_hub, old_channel = self._hub, self._subscribed
            if target_channel == old_channel and (target_channel is None or old_hub is not None):
                changed = False
            else:
                changed = True
                self._hub, self._subscribed = None, None

        if changed and old_hub is not None and old_channel is not None:
            old_hub.remove(old_channel, self)

        if changed and target_channel is not None:
            try:
                hub = hub_module.get_hub(self.settings or get_settings())
            except Exception:
                logger.exception("No Pusher server for the listener on %s", target_channel)
                self._set_status("error")
                return

            with self._lock:
                self._hub, self._subscribed = hub, target_channel
            hub.add(target_channel, self)

        if primary is None:
            with self._lock:
                denied = any(not a.allowed for a in self._attachments.values())
            self._set_status("forbidden" if denied else "offline")
        elif not changed:
            self._set_status(self._hub_status)

    # -- hub callbacks (any thread) ----------------------------------------

    def hub_status(self, status: str) -> None:
        self._hub_status = status
        primary = self._primary()
        if primary is None:
            return

        # The update reads the newest status when it runs, because Bokeh
        # may run next-tick callbacks queued before the session started in
        # any order.
        if not primary.target.schedule(self._show_hub_status):
            self._show_hub_status()

    def _show_hub_status(self) -> None:
        self._set_status(self._hub_status)

    def hub_notification(self, notification: Notification) -> None:
        primary = self._primary()
        if primary is None:
            return

        if notification.origin is not None and notification.origin == primary.token:
            logger.debug("Skipped %r on %s: sent by this session", notification.action, notification.channel)
            return

        if notification.channel != self._subscribed:
            return

        if not self.callbacks(notification.action):
            logger.debug("No callback for action %r on %s", notification.action, notification.channel)
            return

        self._offer(notification.action, notification, primary.target)

    def hub_reconnected(self) -> None:
        primary = self._primary()
        if primary is None or self._channel is None:
            return

        ref = self._reference()
        if ref is None:
            return

        entity, object_id = ref
        if self.on_reconnect is not None:
            replay = Notification.create(entity, object_id, "reconnect", self._channel, reconnect=True)
            self._offer(_RECONNECT_KEY, replay, primary.target)
            return

        for action in self._actions():
            replay = Notification.create(entity, object_id, action, self._channel, reconnect=True)
            self._offer(action, replay, primary.target)

    # -- running callbacks -------------------------------------------------

    def _offer(self, key: Any, notification: Notification, target: SessionTarget) -> None:
        if self._coalescer.offer(key, notification):
            if not target.schedule(self._runner(key, target)):
                self._coalescer.clear()

    def _runner(self, key: Any, target: SessionTarget) -> Callable[[], Any]:
        callbacks = self._callbacks_for(key)

        if any(_is_async(callback) for callback in callbacks):
            async def run_async() -> None:
                try:
                    notification = self._take(key, target)
                    if notification is not None:
                        for callback in self._callbacks_for(key):
                            result = self._invoke(callback, notification)
                            if inspect.isawaitable(result):
                                try:
                                    await result
                                except Exception:
                                    self._log_failure(callback, notification)
                finally:
                    self._after_run(key, target)

            return run_async

        def run() -> None:
            try:
                notification = self._take(key, target)
                if notification is not None:
                    for callback in self._callbacks_for(key):
                        self._invoke(callback, notification)
            finally:
                self._after_run(key, target)

        return run

    def _take(self, key: Any, target: SessionTarget) -> Notification | None:
        notification = self._coalescer.take(key)
        primary = self._primary()
        if primary is None or primary.target is not target:
            # Access was revoked or the session went away after scheduling.
            return None
        return notification

    def _after_run(self, key: Any, target: SessionTarget) -> None:
        if self._coalescer.finish(key):
            if not target.schedule(self._runner(key, target)):
                self._coalescer.clear()

    def _invoke(self, callback: Callable[..., Any], notification: Notification) -> Any:
        try:
            if _wants_argument(callback):
                return callback(notification)
            return callback()
        except Exception:
            self._log_failure(callback, notification)
            return None

    def _log_failure(self, callback: Callable[..., Any], notification: Notification) -> None:
        logger.exception(
            "Callback %s for action %r on %s raised",
            getattr(callback, "__qualname__", callback), notification.action, notification.channel,
        )

    def _callbacks_for(self, key: Any) -> list[Callable[..., Any]]:
        if key == _RECONNECT_KEY:
            return [self.on_reconnect] if self.on_reconnect is not None else []
        return self.callbacks(key)

    def _actions(self) -> list[str]:
        with self._lock:
            names = list(self.actions) + [a for a in self._registered if a not in self.actions]
        return [name for name in names if self.callbacks(name)]

    # -- helpers -----------------------------------------------------------

    def _set_status(self, status: str) -> None:
        with self._lock:
            if status != "forbidden" and self._primary() is None and self._attachments:
                status = "forbidden"
        if status != self.status:
            with edit_readonly(self):
                self.status = status

    def _resolve_channel(self) -> str | None:
        if self.channel is not None:
            return validate_channel_name(self.channel)
        if self.object is None:
            return None
        return channel_name(
            self.object, entity=self.entity, id_param=self.id_param, settings=self.settings
        )

    def _reference(self) -> tuple[str, str] | None:
        if self.object is None:
            return None
        return entity_of(self.object, self.entity), object_id_of(self.object, self.id_param)

    def _check_actions(self, actions: dict[str, Any]) -> None:
        for action, callbacks in actions.items():
            validate_action_name(action)
            callbacks = callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]
            for callback in callbacks:
                if not callable(callback):
                    raise TypeError(f"callback for {action!r} must be callable, not {callback!r}")

    def _badge_html(self) -> str:
        return f'<span class="pp-badge pp-{self.status}" title="Live updates: {self.status}">{self.status}</span>'


def _session_destroyed(listener: NotifyListen, doc: Document, session_context: Any) -> None:
    with listener._lock:
        keys = [key for key, a in listener._attachments.items() if a.target.document is doc]
    for key in keys:
        listener._detach(key)
