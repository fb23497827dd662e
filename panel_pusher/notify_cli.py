"""``panel-pusher notify ENTITY ID ACTION [--user NAME]``: notify from shell scripts and cron jobs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_notify_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``notify`` subcommand to an argparse subparsers object."""
    parser = commands.add_parser(
        "notify",
        help="send an action on an object's channel, as notify() does",
        description=(
            "Send ACTION on the channel of ENTITY and ID, so that every page listening to that "
            "object runs its callbacks. The server comes from the PUSHER_* environment "
            "variables, or the embedded server on 127.0.0.1 when none are set."
        ),
    )
    parser.add_argument("entity", metavar="ENTITY", help="entity name, for example ChatRoom")
    parser.add_argument("object_id", metavar="ID", help="primary key of the object, for example 42")
    parser.add_argument("action", metavar="ACTION", help="action name, for example refresh")
    parser.add_argument("--user", default=None, help="user name to put in the notification")
    parser.set_defaults(func=notify_command)
    return parser


def notify_command(args: argparse.Namespace) -> int:
    """Send the notification; print it as JSON and return 0, or print the error and return 1."""
    from panel_pusher.endpoint import probe_health
    from panel_pusher.notify import NotifyError, notify_entity
    from panel_pusher.settings import PusherSettings

    try:
        settings = PusherSettings.from_env()
        # A server started by this short-lived command would have no listeners.
        if settings.embedded and probe_health(settings.embedded_port) is None:
            raise NotifyError(
                None,
                f"no panel_pusher server answers on 127.0.0.1:{settings.embedded_port}; start "
                "the app (or `panel-pusher server`) first, or set the PUSHER_* variables",
            )
        notification = notify_entity(
            args.entity, args.object_id, args.action, user=args.user, settings=settings, wait=True
        )
    except (ValueError, RuntimeError, NotifyError) as error:
        print(f"panel-pusher notify: {error}", file=sys.stderr)
        return 1

    print(json.dumps({
        "channel": notification.channel,
        "action": notification.action,
        "message_id": notification.message_id,
        "changed_at": notification.changed_at.isoformat(),
    }))
    return 0
