"""Authorization: the hook that decides which user may listen to which object.

An authorize hook ``(user, obj) -> bool`` makes that decision. Listeners call it with
the session's user and the object. The REST auth route calls the same hook
with the request's user and an ``ObjectRef`` (entity and id decoded from the
channel name), because a browser client names a channel, not an object.

The default hook allows everyone when the Panel app has no authentication
and denies anonymous users (and Panel's "guest") when it has.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from typing import Any

from panel.config import config
from panel.io.state import state

logger = logging.getLogger(__name__)

AuthorizeHook = Callable[[Any, Any], bool]

# Users that count as anonymous when authentication is on.
ANONYMOUS_USERS = (None, "", "guest")

# Set by the REST handlers for the duration of a request: whether the
# Tornado application serving it has an auth provider.
request_has_auth: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "panel_pusher_request_has_auth", default=None
)

_hook_lock = threading.Lock()

_hook: AuthorizeHook | None = None


def authentication_enabled() -> bool:
    """Tell whether the running Panel server authenticates its users.

    Detects ``--oauth-provider`` and ``--basic-auth`` (Panel's config), the
    ``basic_auth`` and ``oauth_provider`` arguments of ``pn.serve``, and, in
    the REST routes, any Bokeh auth provider of the serving application.
    """
    in_request = request_has_auth.get()
    if in_request is not None:
        return in_request

    if config.oauth_provider or config.basic_auth:
        return True

    # NOTE: a Bokeh --auth-module provider is only seen by the REST routes;
    # in a session it is not detected, so pass authorize= explicitly there.
    for server_config in list(state._server_config.values()):
        if server_config.get("basic_auth"):
            return True

    return False


def default_authorize(user: Any, obj: Any) -> bool:
    """Allow anyone without authentication; with it, allow only signed-in users."""
    if not authentication_enabled():
        return True

    return user not in ANONYMOUS_USERS


def set_authorize(hook: AuthorizeHook | None) -> None:
    """Set the process-wide authorize hook; None restores the default."""
    if hook is not None and not callable(hook):
        raise TypeError(f"authorize hook must be callable as hook(user, obj), not {hook!r}")

    global _hook
    with _hook_lock:
        _hook = hook


def get_authorize() -> AuthorizeHook:
    """Return the process-wide authorize hook."""
    return _hook or default_authorize


def is_authorized(hook: AuthorizeHook | None, user: Any, obj: Any) -> bool:
    """Call ``hook`` (or the process-wide one) and return its decision; a hook that raises denies."""
    hook = hook or get_authorize()
    try:
        return hook(user, obj) is True
    except Exception:
        logger.exception("The authorize hook raised for user %r; access denied", user)
        return False
