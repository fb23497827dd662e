"""Objects to listen to, as an app would define them."""

from __future__ import annotations

import param


class Room(param.Parameterized):
    """A chat room keyed by ``id``."""

    id = param.Integer(default=None, allow_None=True)

    title = param.String(default="")


class Order(param.Parameterized):
    """An order keyed by ``number``, under an entity name of its own."""

    pusher_entity = "SalesOrder"

    pusher_id = "number"

    number = param.String(default=None, allow_None=True)
