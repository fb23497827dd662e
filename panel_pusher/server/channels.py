"""Channel registry: subscriptions, presence members, the cache and fan-out.

Each event is encoded once into websocket frame bytes, and the same bytes are
written to every subscriber's stream, so the cost per subscriber is one
buffered write with no JSON, logging or coroutine of its own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from panel_pusher.server import protocol
from panel_pusher.server.errors import PusherProtocolError, SubscriptionError
from panel_pusher.server.protocol import ChannelType, Member

logger = logging.getLogger(__name__)

# How long the last HTTP event of a cache channel is kept (soketi's default).
DEFAULT_CACHE_TTL = 3600.0


class Subscriber(Protocol):
    """Interface of a websocket connection, as the registry, the HTTP API and the server use it."""

    socket_id: str

    # Names of the channels this connection is subscribed to, kept by the registry.
    channels: set[str]

    def send(self, text: str) -> None:
        """Send one encoded frame to this connection only."""

    def send_frame(self, frame: bytes) -> None:
        """Write ready websocket frame bytes, shared with other subscribers."""

    def report(self, error: PusherProtocolError) -> None:
        """Send ``error`` as ``pusher:error``, and close the socket when the error requires it."""

    def check_activity(self, now: float) -> None:
        """Ping the socket if it has been silent too long, or close it if it ignored a ping."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Start the websocket closing handshake."""

    def abort(self) -> None:
        """Drop the TCP connection at once."""


class WebhookSink(Protocol):
    """Receiver of the registry's webhook events."""

    def send(self, event: dict[str, Any]) -> None:
        """Queue one webhook event."""


@dataclass
class Stats:
    """Counters for the status endpoint."""

    messages_in: int = 0

    # Frames delivered to sockets, counted once per receiving socket.
    messages_out: int = 0

    http_events: int = 0

    started: float = field(default_factory=time.time)


class Channel:
    """One occupied channel: its subscribers and, on presence channels, its members."""

    __slots__ = ("name", "kind", "subscribers", "members", "member_sockets")

    def __init__(self, name: str) -> None:
        self.name = name
        self.kind: ChannelType = protocol.channel_type(name)

        # Subscribed connections, each with its presence member (None elsewhere).
        self.subscribers: dict[Subscriber, Member | None] = {}

        # Presence only: distinct members by user id, and how many sockets each has here.
        self.members: dict[str, Member] = {}
        self.member_sockets: dict[str, int] = {}

    def member_hash(self) -> dict[str, Any]:
        """Return the presence ``hash``: user id to user_info."""
        return {user_id: member.user_info for user_id, member in self.members.items()}


class ChannelRegistry:
    """All channels, connections and signed-in users of one app."""

    def __init__(
        self,
        *,
        webhooks: WebhookSink | None = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        max_presence_members: int = protocol.MAX_PRESENCE_MEMBERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channels: dict[str, Channel] = {}

        # Open connections by socket id, for sender exclusion and the status endpoint.
        self.connections: dict[str, Subscriber] = {}

        # Signed-in connections by user id, for #server-to-user channels and terminations.
        self.users: dict[str, set[Subscriber]] = {}

        # Cache channels: channel name to (encoded event, expiry time on ``clock``).
        self.cache: dict[str, tuple[str, float]] = {}

        self.stats = Stats()
        self.webhooks = webhooks
        self.cache_ttl = cache_ttl
        self.max_presence_members = max_presence_members
        self._clock = clock

    # Connections

    def add_connection(self, connection: Subscriber) -> None:
        """Register a new connection under its socket id."""
        self.connections[connection.socket_id] = connection

    def remove_connection(self, connection: Subscriber, user_id: str | None = None) -> None:
        """Unsubscribe a closed connection from everything and forget it."""
        for name in list(connection.channels):
            self.unsubscribe(connection, name)

        self.connections.pop(connection.socket_id, None)

        if user_id is not None:
            self.sign_out(connection, user_id)

    def sign_in(self, connection: Subscriber, user_id: str) -> None:
        """Record that ``connection`` is signed in as ``user_id``."""
        self.users.setdefault(user_id, set()).add(connection)

    def sign_out(self, connection: Subscriber, user_id: str) -> None:
        """Forget that ``connection`` is signed in as ``user_id``."""
        sockets = self.users.get(user_id)
        if sockets is not None:
            sockets.discard(connection)
            if not sockets:
                del self.users[user_id]

    def user_connections(self, user_id: str) -> list[Subscriber]:
        """Return the connections signed in as ``user_id``."""
        return list(self.users.get(user_id, ()))

    # Subscriptions

    def subscribe(self, connection: Subscriber, name: str, member: Member | None) -> None:
        """Subscribe ``connection`` and send it subscription_succeeded, then any cached event.

        On presence channels a user's first socket makes the other sockets
        receive ``member_added`` before the joiner's subscription_succeeded.
        """
        channel = self.channels.get(name)
        if channel is not None and connection in channel.subscribers:
            if channel.subscribers[connection] == member:
                # Subscribing again (pysher's auto_sub does) only repeats the reply.
                self._send_succeeded(connection, channel)
                return
            self.unsubscribe(connection, name)
            channel = self.channels.get(name)

        if channel is None:
            channel = Channel(name)

        if member is not None and member.user_id not in channel.members:
            if len(channel.members) >= self.max_presence_members:
                raise SubscriptionError(
                    name, f"presence channel is full ({self.max_presence_members} members)", 403
                )

        if not channel.subscribers:
            self.channels[name] = channel
            self._webhook({"name": "channel_occupied", "channel": name})

        channel.subscribers[connection] = member
        connection.channels.add(name)

        if member is not None:
            self._add_member(connection, channel, member)

        self._send_succeeded(connection, channel)

    def _add_member(self, connection: Subscriber, channel: Channel, member: Member) -> None:
        count = channel.member_sockets.get(member.user_id, 0)
        channel.member_sockets[member.user_id] = count + 1
        if count:
            return

        channel.members[member.user_id] = member
        self._fan_out(channel, protocol.member_added(channel.name, member), connection)
        self._webhook({"name": "member_added", "channel": channel.name, "user_id": member.user_id})

    def _send_succeeded(self, connection: Subscriber, channel: Channel) -> None:
        members = channel.member_hash() if channel.kind.presence else None
        connection.send(protocol.subscription_succeeded(channel.name, members))

        if channel.kind.cache:
            cached = self.cached_event(channel.name)
            if cached is None:
                connection.send(protocol.cache_miss(channel.name))
                self._webhook({"name": "cache_miss", "channel": channel.name})
            else:
                connection.send(cached)

    def unsubscribe(self, connection: Subscriber, name: str) -> None:
        """Remove ``connection`` from channel ``name``, if it is subscribed."""
        connection.channels.discard(name)
        channel = self.channels.get(name)
        if channel is None or connection not in channel.subscribers:
            return

        member = channel.subscribers.pop(connection)
        if member is not None:
            self._remove_member(channel, member.user_id)

        if not channel.subscribers:
            del self.channels[name]
            self._webhook({"name": "channel_vacated", "channel": name})

    def _remove_member(self, channel: Channel, user_id: str) -> None:
        count = channel.member_sockets[user_id] - 1
        if count:
            channel.member_sockets[user_id] = count
            return

        del channel.member_sockets[user_id]
        del channel.members[user_id]
        self._fan_out(channel, protocol.member_removed(channel.name, user_id), None)
        self._webhook({"name": "member_removed", "channel": channel.name, "user_id": user_id})

    def is_subscribed(self, connection: Subscriber, name: str) -> bool:
        """Tell whether ``connection`` is subscribed to channel ``name``."""
        return name in connection.channels

    def member_of(self, connection: Subscriber, name: str) -> Member | None:
        """Return the presence member that ``connection`` is on channel ``name``."""
        channel = self.channels.get(name)
        return None if channel is None else channel.subscribers.get(connection)

    # Delivery

    def publish(self, names: Iterable[str], event: str, data: Any, socket_id: str | None) -> int:
        """Send an HTTP API event to every subscriber of each channel except ``socket_id``.

        Return the number of sockets it was written to.
        """
        excluded = self.connections.get(socket_id) if socket_id else None
        delivered = 0

        for name in names:
            text = protocol.channel_event(event, name, data)
            if protocol.channel_type(name).cache:
                self.cache[name] = (text, self._clock() + self.cache_ttl)

            channel = self.channels.get(name)
            if channel is not None:
                delivered += self._fan_out(channel, text, excluded)

        self.stats.http_events += 1
        return delivered

    def relay_client_event(
        self, sender: Subscriber, name: str, event: str, data: Any, user_id: str | None
    ) -> int:
        """Relay a client event to the channel's other subscribers and return how many received it."""
        channel = self.channels.get(name)
        if channel is None:
            return 0

        delivered = self._fan_out(channel, protocol.channel_event(event, name, data, user_id), sender)

        if self.webhooks is not None:
            hook: dict[str, Any] = {
                "name": "client_event",
                "channel": name,
                "event": event,
                "data": data if isinstance(data, str) else json.dumps(data),
                "socket_id": sender.socket_id,
            }
            if user_id is not None:
                hook["user_id"] = user_id
            self.webhooks.send(hook)

        return delivered

    def _fan_out(self, channel: Channel, text: str, excluded: Subscriber | None) -> int:
        frame = protocol.websocket_text_frame(text.encode("utf-8"))

        # A tuple, because a failed write may close a socket while the loop runs.
        targets = tuple(channel.subscribers)
        for connection in targets:
            if connection is not excluded:
                connection.send_frame(frame)

        delivered = len(targets) - (excluded is not None and excluded in channel.subscribers)
        self.stats.messages_out += delivered
        return delivered

    def cached_event(self, name: str) -> str | None:
        """Return the cached event of a cache channel, or None if none is kept or it expired."""
        entry = self.cache.get(name)
        if entry is None:
            return None

        text, expires = entry
        if expires <= self._clock():
            del self.cache[name]
            return None

        return text

    def cache_ttl_left(self, name: str) -> int:
        """Return the whole seconds left before the cached event of channel ``name`` expires."""
        entry = self.cache.get(name)
        if entry is None:
            return 0

        return max(0, int(entry[1] - self._clock()))

    def purge_cache(self) -> None:
        """Drop expired cache entries."""
        now = self._clock()
        for name in [name for name, (_, expires) in self.cache.items() if expires <= now]:
            del self.cache[name]

    # Queries for the HTTP API

    def subscription_count(self, name: str) -> int:
        """Return how many sockets are subscribed to channel ``name``."""
        channel = self.channels.get(name)
        return 0 if channel is None else len(channel.subscribers)

    def user_count(self, name: str) -> int:
        """Return how many distinct users are on presence channel ``name``."""
        channel = self.channels.get(name)
        return 0 if channel is None else len(channel.members)

    def user_ids(self, name: str) -> list[str]:
        """Return the distinct user ids on presence channel ``name``."""
        channel = self.channels.get(name)
        return [] if channel is None else list(channel.members)

    def _webhook(self, event: dict[str, Any]) -> None:
        if self.webhooks is not None:
            self.webhooks.send(event)
