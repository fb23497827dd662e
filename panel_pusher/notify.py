"""notify(): tell every page that shows an object that it changed.

notify sends one event on the object's channel through the HTTP API, with the
official ``pusher`` SDK signing the request. Called on a thread that runs an
event loop (a Panel session callback, a notebook cell), it returns at once
and sends from a background thread, so the HTTP round trip never blocks the
session's loop. In async code, ``anotify`` awaits the send and raises its
errors.

Example::

    room.title = "New title"
    store.save(room)
    notify(room, "refresh")
"""

from __future__ import annotations

import asyncio
import logging
import threading
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pusher
from pusher.errors import PusherBadAuth, PusherBadRequest, PusherBadStatus, PusherError, PusherForbidden
from pusher.http import process_response

from .channels import channel_name, entity_of, object_id_of
from .endpoint import Endpoint, resolve_endpoint
from .notification import Notification
from .settings import PusherSettings, get_settings
from .validation import MAX_DATA_BYTES, validate_action_name

logger = logging.getLogger(__name__)

# Seconds an HTTP API request may take before notify fails.
HTTP_TIMEOUT_SECONDS = 5.0


class NotifyError(Exception):
    """Sending a notification failed; ``status`` is the HTTP status or None if no response came."""

    def __init__(self, status: int | None, text: str) -> None:
        super().__init__(status, text)
        self.status = status
        self.text = text

    def __str__(self) -> str:
        if self.status is None:
            return f"notify failed: {self.text}"
        return f"notify failed with HTTP {self.status}: {self.text}"


class _UrllibBackend:
    """HTTP backend for the ``pusher`` SDK on urllib.

    The SDK's default (requests) lets urllib3 log every URL at DEBUG, and the
    URL carries the request signature; urllib logs nothing.
    """

    def __init__(self, client: Any, **options: Any) -> None:
        self.client = client

    def send_request(self, request: Any) -> Any:
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")

        http_request = urllib.request.Request(
            request.url, data=body or None, headers=request.headers, method=request.method
        )
        try:
            with urllib.request.urlopen(http_request, timeout=self.client.timeout) as response:
                status, body = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode("utf-8", "replace")

        return process_response(status, body)


_clients: dict[Endpoint, pusher.Pusher] = {}

_clients_lock = threading.Lock()

_executor: ThreadPoolExecutor | None = None


def _client(endpoint: Endpoint) -> pusher.Pusher:
    with _clients_lock:
        client = _clients.get(endpoint)
        if client is None:
            client = _clients[endpoint] = pusher.Pusher(
                app_id=endpoint.app_id,
                key=endpoint.key,
                secret=endpoint.secret,
                ssl=endpoint.secure,
                host=endpoint.api_host,
                port=endpoint.port,
                timeout=HTTP_TIMEOUT_SECONDS,
                backend=_UrllibBackend,
            )
        return client


def _background() -> ThreadPoolExecutor:
    # One worker keeps the events of a process in the order notify was called.
    # NOTE: its queue is unbounded, so a server that stops responding lets
    # notifications pile up, one HTTP timeout (5 s) each.
    global _executor
    with _clients_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="panel-pusher-notify")
        return _executor


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _status_of(error: PusherError) -> int | None:
    if isinstance(error, PusherBadRequest):
        return 400
    if isinstance(error, PusherBadAuth):
        return 401
    if isinstance(error, PusherForbidden):
        return 403
    if isinstance(error, PusherBadStatus):
        head = str(error).split(":", 1)[0]
        return int(head) if head.isdigit() else None
    return None


def _text_of(error: PusherError) -> str:
    text = str(error)
    if isinstance(error, PusherBadStatus) and ":" in text:
        text = text.split(":", 1)[1].strip()
    return text


def build_notification(
    obj: Any,
    action: str,
    *,
    user: str | None = None,
    exclude_session: bool = False,
    settings: PusherSettings | None = None,
    entity: str | None = None,
    object_id: Any = None,
    id_param: str | None = None,
) -> Notification:
    """Return the notification that notify would send, without sending it.

    Raises ``ValueError`` for an invalid action or object, and ``NotifyError``
    if the body would pass Pusher's 10 KB limit.
    """
    validate_action_name(action)

    if user is not None and not isinstance(user, str):
        raise ValueError(f"user must be a string or None, not {type(user).__name__}")

    settings = settings or get_settings()
    channel = channel_name(obj, entity=entity, object_id=object_id, id_param=id_param, settings=settings)
    entity = entity_of(obj, entity)
    if object_id is None:
        object_id = object_id_of(obj, id_param)

    # Panel is imported here, not at module level, so that importing the
    # package stays light for the server and the command line.
    from .listen.session import current_document, session_token

    doc = current_document()
    if user is None and doc is not None:
        from panel.io.state import state

        user = state.user

    origin = session_token(doc) if exclude_session else None
    notification = Notification.create(
        entity, str(object_id), action, channel, user=user, origin=origin
    )

    size = len(notification.to_json().encode("utf-8"))
    if size > MAX_DATA_BYTES:
        raise NotifyError(
            None,
            f"the event body is {size} bytes and Pusher accepts at most {MAX_DATA_BYTES} bytes; "
            "shorten the user name or the id",
        )

    return notification


def send_notification(notification: Notification, settings: PusherSettings | None = None) -> None:
    """Send a built notification through the HTTP API, blocking; raise ``NotifyError`` on failure."""
    try:
        endpoint = resolve_endpoint(settings or get_settings())
    except (OSError, RuntimeError) as error:
        raise NotifyError(None, f"no Pusher server available: {error}") from error

    try:
        _client(endpoint).trigger(notification.channel, notification.action, notification.to_json())
    except PusherError as error:
        raise NotifyError(_status_of(error), _text_of(error)) from error
    except ValueError as error:
        raise NotifyError(None, str(error)) from error
    except OSError as error:
        reason = getattr(error, "reason", error)
        raise NotifyError(
            None, f"could not reach {endpoint.api_host}:{endpoint.port}: {reason}"
        ) from error

    logger.debug(
        "Sent %r on %s (message %s)", notification.action, notification.channel, notification.message_id
    )


def _send_logged(notification: Notification, settings: PusherSettings | None) -> None:
    try:
        send_notification(notification, settings)
    except NotifyError as error:
        logger.error(
            "Notification %r on %s (message %s) was not sent: %s",
            notification.action, notification.channel, notification.message_id, error,
        )
    except Exception:
        logger.exception(
            "Notification %r on %s (message %s) was not sent",
            notification.action, notification.channel, notification.message_id,
        )


def notify(
    obj: Any,
    action: str,
    *,
    user: str | None = None,
    exclude_session: bool = False,
    settings: PusherSettings | None = None,
    entity: str | None = None,
    id_param: str | None = None,
    wait: bool | None = None,
) -> Notification:
    """Send ``action`` on the channel of ``obj`` and return the notification sent.

    ``user`` defaults to the Panel session's user. ``exclude_session`` skips
    listeners in the calling Panel session (not the user's other tabs).
    With ``wait=None`` (the default), a call on a thread that runs an event
    loop, such as a Panel session callback, sends in the background and logs
    failures. Elsewhere it blocks and raises ``NotifyError`` on failure.
    ``wait=True`` always blocks. Invalid arguments raise ``ValueError``.
    """
    notification = build_notification(
        obj, action, user=user, exclude_session=exclude_session,
        settings=settings, entity=entity, id_param=id_param,
    )

    return _dispatch(notification, settings, wait)


def _dispatch(
    notification: Notification, settings: PusherSettings | None, wait: bool | None
) -> Notification:
    # With wait=None, block unless the calling thread runs an event loop.
    if wait is None:
        wait = not _on_event_loop()

    if wait:
        send_notification(notification, settings)
    else:
        _background().submit(_send_logged, notification, settings)

    return notification


def notify_entity(
    entity: str,
    object_id: Any,
    action: str,
    *,
    user: str | None = None,
    settings: PusherSettings | None = None,
    wait: bool | None = None,
) -> Notification:
    """Send ``action`` on the channel of ``entity`` and ``object_id`` without loading the object."""
    notification = build_notification(
        None, action, user=user, settings=settings, entity=entity, object_id=object_id
    )

    return _dispatch(notification, settings, wait)


async def anotify(
    obj: Any,
    action: str,
    *,
    user: str | None = None,
    exclude_session: bool = False,
    settings: PusherSettings | None = None,
    entity: str | None = None,
    id_param: str | None = None,
) -> Notification:
    """Async twin of ``notify``: await the send without blocking the loop; raise ``NotifyError`` on failure."""
    notification = build_notification(
        obj, action, user=user, exclude_session=exclude_session,
        settings=settings, entity=entity, id_param=id_param,
    )

    future: Future[None] = _background().submit(send_notification, notification, settings)
    await asyncio.wrap_future(future)
    return notification
