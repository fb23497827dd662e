"""REST routes for browser and external Pusher clients, as a ``panel serve`` plugin.

``panel serve app.py --plugins panel_pusher.rest`` mounts:

- ``POST /rest/pusher/auth``: the channel authorization endpoint that
  pusher-js and pysher call with form fields ``socket_id`` and
  ``channel_name``. It signs the subscription after the authorize hook
  allows the request's user for the channel's object, and returns 403
  otherwise;
- ``GET /rest/pusher/key``: the public key, host, port and TLS flag that a
  client needs to connect. The secret never leaves the process.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from tornado.web import HTTPError, RequestHandler

from .auth import is_authorized, request_has_auth
from .channels import PRIVATE_PREFIX, parse_channel
from .endpoint import resolve_endpoint
from .settings import get_settings
from .signatures import channel_auth
from .validation import validate_channel_name

logger = logging.getLogger(__name__)

SOCKET_ID_PATTERN = re.compile(r"^\d+\.\d+$")

HTTP_BAD_REQUEST = 400

HTTP_FORBIDDEN = 403


class _JSONHandler(RequestHandler):
    """Base of the routes: JSON bodies for errors too."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason})

    def _app_has_auth(self) -> bool:
        provider = getattr(self.application, "auth_provider", None)
        return bool(provider is not None and (provider.get_user or provider.get_user_async))

    async def _current_user(self) -> Any:
        provider = getattr(self.application, "auth_provider", None)
        if provider is None:
            return None
        if provider.get_user is not None:
            return provider.get_user(self)
        if provider.get_user_async is not None:
            return await provider.get_user_async(self)
        return None


class PusherAuthHandler(_JSONHandler):
    """Signs a private-channel subscription for a client the authorize hook allows."""

    async def post(self) -> None:
        socket_id, channel = self._arguments()

        if not SOCKET_ID_PATTERN.match(socket_id):
            raise HTTPError(HTTP_BAD_REQUEST, f"invalid socket_id {socket_id[:40]!r}", reason="invalid socket_id")

        try:
            validate_channel_name(channel)
            ref = parse_channel(channel)
        except ValueError as error:
            raise HTTPError(HTTP_BAD_REQUEST, str(error), reason="invalid channel_name") from None

        user = await self._current_user()
        token = request_has_auth.set(self._app_has_auth())
        try:
            allowed = is_authorized(None, user, ref)
        finally:
            request_has_auth.reset(token)

        if not allowed:
            logger.info("Denied %s to user %r", channel, user)
            raise HTTPError(HTTP_FORBIDDEN, f"user {user!r} may not listen to {channel}", reason="forbidden")

        endpoint = resolve_endpoint(get_settings())
        self.finish({"auth": channel_auth(endpoint.key, endpoint.secret, socket_id, channel)})

    def _arguments(self) -> tuple[str, str]:
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            try:
                body = json.loads(self.request.body or b"{}")
            except ValueError:
                raise HTTPError(HTTP_BAD_REQUEST, "body is not JSON", reason="invalid JSON body") from None
            if not isinstance(body, dict):
                raise HTTPError(HTTP_BAD_REQUEST, "body is not a JSON object", reason="invalid JSON body")
            socket_id, channel = body.get("socket_id"), body.get("channel_name")
        else:
            socket_id = self.get_body_argument("socket_id", None)
            channel = self.get_body_argument("channel_name", None)

        if not isinstance(socket_id, str) or not isinstance(channel, str):
            raise HTTPError(
                HTTP_BAD_REQUEST, "socket_id or channel_name missing", reason="socket_id and channel_name are required"
            )

        if not channel.startswith(PRIVATE_PREFIX):
            raise HTTPError(HTTP_BAD_REQUEST, f"not a private channel: {channel[:60]!r}", reason="not a private channel")

        return socket_id, channel


class PusherKeyHandler(_JSONHandler):
    """Returns what a Pusher client needs to connect: key, host, port, TLS and cluster."""

    def get(self) -> None:
        settings = get_settings()
        endpoint = resolve_endpoint(settings)
        self.finish({
            "key": endpoint.key,
            "host": endpoint.ws_host,
            "port": endpoint.port,
            "forceTLS": endpoint.secure,
            "cluster": settings.cluster or "mt1",
            "channel_prefix": settings.channel_prefix,
        })


ROUTES = [
    (r"/rest/pusher/auth", PusherAuthHandler, {}),
    (r"/rest/pusher/key", PusherKeyHandler, {}),
]
