"""Webhooks: signed POSTs that tell the app about channel activity.

Events raised in one IOLoop iteration go out together in one request
``{"time_ms": ..., "events": [...]}``, signed with ``X-Pusher-Key`` and
``X-Pusher-Signature`` (HMAC-SHA256 of the raw body), so that the ``pusher``
SDK's ``validate_webhook`` accepts them. ``time_ms`` is in milliseconds:
the SDK rejects bodies more than 300 s away from its clock.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from tornado import gen
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop

from panel_pusher import signatures

logger = logging.getLogger(__name__)

# Delays in seconds before each retry of a failed delivery; then the batch is dropped.
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)

# Events queued beyond this are dropped, so a dead receiver cannot grow memory without bound.
MAX_PENDING_EVENTS = 10_000

REQUEST_TIMEOUT = 5.0


class WebhookSender:
    """Queue webhook events and POST them to ``url`` on the server's IOLoop."""

    def __init__(self, url: str, key: str, secret: str) -> None:
        self.url = url
        self.key = key
        self._secret = secret
        self._pending: list[dict[str, Any]] = []
        self._scheduled = False

        # Counters for the status endpoint.
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def send(self, event: dict[str, Any]) -> None:
        """Queue ``event``; the batch is posted on the next IOLoop iteration."""
        if len(self._pending) >= MAX_PENDING_EVENTS:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("webhook queue full; %d events dropped so far", self.dropped)
            return

        self._pending.append(event)
        if not self._scheduled:
            self._scheduled = True
            IOLoop.current().add_callback(self._flush)

    async def _flush(self) -> None:
        self._scheduled = False
        events, self._pending = self._pending, []
        if events:
            await self.deliver(events)

    async def deliver(self, events: list[dict[str, Any]]) -> bool:
        """POST ``events`` in one signed request, retrying with backoff; return whether it succeeded."""
        body = json.dumps({"time_ms": int(time.time() * 1000), "events": events}).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "X-Pusher-Key": self.key,
            "X-Pusher-Signature": signatures.webhook_signature(self._secret, body),
        }
        request = HTTPRequest(
            self.url, method="POST", headers=headers, body=body, request_timeout=REQUEST_TIMEOUT
        )
        names = ",".join(sorted({event["name"] for event in events}))

        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            if delay:
                await gen.sleep(delay)

            try:
                await AsyncHTTPClient().fetch(request)
            except (HTTPClientError, OSError) as error:
                logger.warning(
                    "webhook %s to %s failed (attempt %d): %s", names, self.url, attempt + 1, error
                )
                continue

            self.sent += 1
            return True

        self.failed += 1
        logger.error("webhook %s to %s dropped after %d attempts", names, self.url, len(RETRY_DELAYS) + 1)
        return False

