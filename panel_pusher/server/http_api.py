"""The Pusher HTTP API, one handler per endpoint, plus health and status.

Every API handler checks the request signature in ``prepare()``. It checks
the key, ``auth_version`` 1.0 and a timestamp within 600 s. It checks
``body_md5`` whenever the body is non-empty or the parameter is present,
because the ``pusher`` SDK 3.3.4 signs it on GET requests too. Then it
compares the HMAC in constant time. Errors go out as JSON
``{"error": "..."}``. The log gets the path but never the query string,
which carries the signature.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tornado.web import HTTPError, RequestHandler

from panel_pusher import signatures
from panel_pusher.server import codes, protocol
from panel_pusher.server.errors import Unauthorized
from panel_pusher.validation import MAX_BATCH_EVENTS, MAX_CHANNELS_PER_TRIGGER
from panel_pusher.validation import validate_channel_name, validate_data_size, validate_event_name

if TYPE_CHECKING:
    from panel_pusher.server.app import PusherServer

logger = logging.getLogger(__name__)

access_logger = logging.getLogger("panel_pusher.server.access")

# Requests signed more than this many seconds away from the server clock are rejected.
TIMESTAMP_WINDOW = 600

CHANNEL_ATTRIBUTES = frozenset({"user_count", "subscription_count"})

# The usual success body, ready-encoded: most triggers reply with it.
EMPTY_OBJECT = b"{}"


class APIError(HTTPError):
    """An HTTP API error whose ``message`` goes to the client as JSON."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, "%s", message)
        self.message = message


def log_request(handler: RequestHandler) -> None:
    """Log one finished request at DEBUG with its path only, because the query contains the signature.

    Failed requests are also logged at WARNING or ERROR by ``log_exception``.
    """
    if access_logger.isEnabledFor(logging.DEBUG):
        request = handler.request
        access_logger.debug(
            "%d %s %s (%s) %.2fms",
            handler.get_status(),
            request.method,
            request.path,
            request.remote_ip,
            1000.0 * request.request_time(),
        )


class JSONHandler(RequestHandler):
    """Base handler: JSON errors, and logs without the query string."""

    def initialize(self, server: PusherServer) -> None:
        self.server = server
        self.registry = server.registry

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        message = getattr(error, "message", None) or self._reason
        self.finish({"error": message})

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, APIError):
            logger.warning(
                "%d %s %s: %s", value.status_code, self.request.method, self.request.path, value.message
            )
        elif isinstance(value, HTTPError):
            logger.warning("%d %s %s", value.status_code, self.request.method, self.request.path)
        else:
            logger.error(
                "internal error on %s %s", self.request.method, self.request.path, exc_info=(typ, value, tb)
            )


class SignedHandler(JSONHandler):
    """Base of the Pusher API endpoints: checks the request signature first."""

    def prepare(self) -> None:
        self.check_signature()

    def check_signature(self) -> None:
        """Raise ``APIError`` unless the request is signed for this app."""
        config = self.server.config
        app_id = self.path_kwargs.get("app_id")
        if app_id is not None and app_id != config.app_id:
            raise APIError(codes.HTTP_404_NOT_FOUND, f"app {app_id[:50]!r} not found")

        params = {
            name: values[-1].decode("utf-8", "replace")
            for name, values in self.request.query_arguments.items()
        }
        unauthorized = codes.HTTP_401_UNAUTHORIZED

        if params.get("auth_key") != config.key:
            raise APIError(unauthorized, "invalid or missing auth_key")

        if params.get("auth_version") != signatures.AUTH_VERSION:
            raise APIError(unauthorized, f"auth_version must be {signatures.AUTH_VERSION}")

        timestamp = params.get("auth_timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TIMESTAMP_WINDOW:
            raise APIError(
                unauthorized,
                f"auth_timestamp must be unix seconds within {TIMESTAMP_WINDOW} s of the server clock",
            )

        body = self.request.body
        if body or "body_md5" in params:
            if not signatures.signatures_match(signatures.body_md5(body), params.get("body_md5", "")):
                raise APIError(unauthorized, "body_md5 does not match the body")

        expected = signatures.sign(
            config.secret, signatures.request_string(self.request.method or "", self.request.path, params)
        )
        if not signatures.signatures_match(expected, params.get("auth_signature", "")):
            raise APIError(unauthorized, "invalid auth_signature")

    def json_body(self) -> dict[str, Any]:
        """Return the request body as a JSON object, or raise a 400."""
        try:
            body = json.loads(self.request.body)
        except ValueError:
            raise APIError(codes.HTTP_400_BAD_REQUEST, "the body is not valid JSON") from None

        if not isinstance(body, dict):
            raise APIError(codes.HTTP_400_BAD_REQUEST, "the body must be a JSON object")

        return body

    def info_attributes(self) -> set[str]:
        """Return the attributes named in the ``info`` query parameter."""
        info = self.get_query_argument("info", "")
        attributes = {name for name in info.split(",") if name}
        return attributes


@dataclass(frozen=True)
class Trigger:
    """One validated event from ``/events`` or one ``/batch_events`` item."""

    name: str

    channels: list[str]

    data: str

    socket_id: str | None

    info: frozenset[str]


def parse_trigger(item: Any, *, single_channel: bool) -> Trigger:
    """Validate an event request body or batch item, or raise ``APIError``."""
    bad_request = codes.HTTP_400_BAD_REQUEST
    if not isinstance(item, dict):
        raise APIError(bad_request, "each event must be a JSON object")

    try:
        name = validate_event_name(item.get("name"))
    except ValueError as error:
        raise APIError(bad_request, str(error)) from None

    channels = _trigger_channels(item, single_channel)

    data = item.get("data")
    if not isinstance(data, str):
        raise APIError(bad_request, "'data' must be a string")
    try:
        validate_data_size(data)
    except ValueError as error:
        raise APIError(codes.HTTP_413_CONTENT_TOO_LARGE, str(error)) from None

    socket_id = item.get("socket_id")
    if socket_id is not None:
        if not isinstance(socket_id, str) or not protocol.SOCKET_ID_PATTERN.match(socket_id):
            raise APIError(bad_request, f"invalid socket_id {str(socket_id)[:50]!r}")

    info = item.get("info") or ""
    if not isinstance(info, str):
        raise APIError(bad_request, "'info' must be a comma-separated string")
    attributes = frozenset(name for name in info.split(",") if name)
    if not attributes <= CHANNEL_ATTRIBUTES:
        raise APIError(bad_request, f"'info' may list only {', '.join(sorted(CHANNEL_ATTRIBUTES))}")

    return Trigger(name, channels, data, socket_id, attributes)


def _trigger_channels(item: dict[str, Any], single_channel: bool) -> list[str]:
    bad_request = codes.HTTP_400_BAD_REQUEST
    if "channels" in item and not single_channel:
        channels = item["channels"]
    elif "channel" in item:
        channels = [item["channel"]]
    else:
        raise APIError(bad_request, "missing 'channel'" if single_channel else "missing 'channels'")

    if not isinstance(channels, list) or not channels:
        raise APIError(bad_request, "'channels' must be a non-empty list")

    if len(channels) > MAX_CHANNELS_PER_TRIGGER:
        raise APIError(
            bad_request,
            f"{len(channels)} channels in one trigger; the maximum is {MAX_CHANNELS_PER_TRIGGER}",
        )

    try:
        checked = [validate_channel_name(channel) for channel in channels]
    except ValueError as error:
        raise APIError(bad_request, str(error)) from None

    if len(checked) > 1 and any(protocol.channel_type(c).encrypted for c in checked):
        raise APIError(bad_request, "encrypted channels take one channel per trigger")

    return checked


class EventsHandler(SignedHandler):
    """``POST /apps/{app_id}/events``: trigger one event on up to 100 channels."""

    def post(self, app_id: str) -> None:
        trigger = parse_trigger(self.json_body(), single_channel=False)
        self.registry.publish(trigger.channels, trigger.name, trigger.data, trigger.socket_id)

        if trigger.info:
            self.finish({"channels": self.trigger_attributes(trigger)})
        else:
            self.finish(EMPTY_OBJECT)

    def trigger_attributes(self, trigger: Trigger) -> dict[str, dict[str, int]]:
        """Return the ``info`` attributes of each channel the event went to."""
        result: dict[str, dict[str, int]] = {}
        for name in trigger.channels:
            attributes: dict[str, int] = {}
            if "user_count" in trigger.info and protocol.channel_type(name).presence:
                attributes["user_count"] = self.registry.user_count(name)
            if "subscription_count" in trigger.info:
                attributes["subscription_count"] = self.registry.subscription_count(name)
            result[name] = attributes

        return result


class BatchEventsHandler(EventsHandler):
    """``POST /apps/{app_id}/batch_events``: up to 10 events, each on one channel."""

    def post(self, app_id: str) -> None:
        batch = self.json_body().get("batch")
        if not isinstance(batch, list):
            raise APIError(codes.HTTP_400_BAD_REQUEST, "'batch' must be a list of events")

        if len(batch) > MAX_BATCH_EVENTS:
            raise APIError(
                codes.HTTP_400_BAD_REQUEST,
                f"{len(batch)} events in one batch; the maximum is {MAX_BATCH_EVENTS}",
            )

        # Check every item before sending any, so a bad batch sends nothing.
        triggers = [parse_trigger(item, single_channel=True) for item in batch]
        for trigger in triggers:
            self.registry.publish(trigger.channels, trigger.name, trigger.data, trigger.socket_id)

        if any(trigger.info for trigger in triggers):
            items = [self.trigger_attributes(t).get(t.channels[0], {}) for t in triggers]
            self.finish({"batch": items})
        else:
            self.finish(EMPTY_OBJECT)


class ChannelsHandler(SignedHandler):
    """``GET /apps/{app_id}/channels``: occupied channels, optionally by prefix."""

    def get(self, app_id: str) -> None:
        prefix = self.get_query_argument("filter_by_prefix", "")
        attributes = self.info_attributes()
        if not attributes <= {"user_count"}:
            raise APIError(codes.HTTP_400_BAD_REQUEST, "'info' may list only user_count here")

        if attributes and not prefix.startswith("presence-"):
            raise APIError(
                codes.HTTP_400_BAD_REQUEST, "info=user_count needs filter_by_prefix=presence-"
            )

        channels: dict[str, dict[str, int]] = {}
        for name in self.registry.channels:
            if name.startswith(prefix):
                channels[name] = {"user_count": self.registry.user_count(name)} if attributes else {}

        self.finish({"channels": channels})


class ChannelHandler(SignedHandler):
    """``GET /apps/{app_id}/channels/{channel}``: whether it is occupied, and counts."""

    def get(self, app_id: str, channel: str) -> None:
        name = _channel_from_path(channel)
        kind = protocol.channel_type(name)
        attributes = self.info_attributes()

        if not attributes <= CHANNEL_ATTRIBUTES | {"cache"}:
            raise APIError(
                codes.HTTP_400_BAD_REQUEST, "'info' may list only user_count, subscription_count, cache"
            )

        if "user_count" in attributes and not kind.presence:
            raise APIError(codes.HTTP_400_BAD_REQUEST, "user_count is only available on presence channels")

        if "subscription_count" in attributes and kind.presence:
            raise APIError(
                codes.HTTP_400_BAD_REQUEST, "subscription_count is not available on presence channels"
            )

        count = self.registry.subscription_count(name)
        result: dict[str, Any] = {"occupied": count > 0}
        if "user_count" in attributes:
            result["user_count"] = self.registry.user_count(name)
        if "subscription_count" in attributes:
            result["subscription_count"] = count
        if "cache" in attributes and kind.cache:
            cached = self.registry.cached_event(name)
            if cached is not None:
                result["cache"] = {"data": json.loads(cached)["data"], "ttl": self.registry.cache_ttl_left(name)}

        self.finish(result)


class ChannelUsersHandler(SignedHandler):
    """``GET /apps/{app_id}/channels/{channel}/users``: the distinct users of a presence channel."""

    def get(self, app_id: str, channel: str) -> None:
        name = _channel_from_path(channel)
        if not protocol.channel_type(name).presence:
            raise APIError(codes.HTTP_400_BAD_REQUEST, "users are only listed for presence channels")

        self.finish({"users": [{"id": user_id} for user_id in self.registry.user_ids(name)]})


class TerminateConnectionsHandler(SignedHandler):
    """``POST [/apps/{app_id}]/users/{user_id}/terminate_connections``.

    The ``pusher`` SDK 3.3.4 leaves out the ``/apps/{app_id}`` prefix, so the
    route without it is served too and the app is found by ``auth_key``.
    """

    def post(self, user_id: str, app_id: str | None = None) -> None:
        connections = self.registry.user_connections(user_id)
        for connection in connections:
            connection.report(Unauthorized("connection terminated by the server"))

        logger.info("terminated %d connections of user %s", len(connections), user_id)
        self.finish(EMPTY_OBJECT)


def _channel_from_path(channel: str) -> str:
    try:
        return validate_channel_name(channel)
    except ValueError as error:
        raise APIError(codes.HTTP_400_BAD_REQUEST, str(error)) from None


class HealthHandler(JSONHandler):
    """``GET /health``: identifies the server as panel_pusher and names its app id and key.

    The secret is never part of the reply.
    """

    def get(self) -> None:
        config = self.server.config
        self.finish({"status": "ok", "server": "panel_pusher", "app_id": config.app_id, "key": config.key})


class StatusHandler(JSONHandler):
    """``GET /status``: counters for ``panel-pusher status``."""

    def get(self) -> None:
        self.finish(self.server.status())


class NotFoundHandler(JSONHandler):
    """Any other path: a JSON 404."""

    def prepare(self) -> None:
        raise APIError(codes.HTTP_404_NOT_FOUND, "not found")
