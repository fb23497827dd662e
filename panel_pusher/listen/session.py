"""Session targets: the event loops where listener callbacks run.

Events arrive on pysher's thread, which must never run user code. A target
takes a callable from any thread and runs it on the session's own loop with
``pn.state.curdoc`` set to the session's document:

- ``DocumentTarget``: a Bokeh server session; uses the document's next tick,
  which Bokeh documents as safe to call from other threads.
- ``LoopTarget``: a Tornado IOLoop, such as the kernel's loop in a notebook,
  or the shared callback thread for listeners started outside any session.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from panel.io.state import set_curdoc, state
from tornado.ioloop import IOLoop

if TYPE_CHECKING:
    from bokeh.document import Document

logger = logging.getLogger(__name__)

Runner = Callable[[], "Awaitable[Any] | Any"]

_tokens: WeakKeyDictionary[Any, str] = WeakKeyDictionary()

_tokens_lock = threading.Lock()


def session_token(doc: Document | None) -> str | None:
    """Return a random token that stands for ``doc`` in event bodies, or None without a document.

    The token, not the Bokeh session id, goes on the wire, because a session
    id lets a client join that session.
    """
    if doc is None:
        return None

    with _tokens_lock:
        token = _tokens.get(doc)
        if token is None:
            token = _tokens[doc] = secrets.token_hex(8)
        return token


def current_document() -> Document | None:
    """Return the document of the Panel session running now, or None outside one."""
    return state.curdoc


class SessionTarget:
    """Base of the places a listener's callbacks run."""

    # The document whose session runs the callbacks; None for a bare loop.
    document: Document | None = None

    def __init__(self) -> None:
        self.alive = True

    def schedule(self, runner: Runner) -> bool:
        """Run ``runner`` on the target's loop soon; return False if the target is gone."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop running anything scheduled from now on, including what is already queued."""
        self.alive = False

    def _wrap(self, runner: Runner) -> Callable[[], Any]:
        doc = self.document

        if inspect.iscoroutinefunction(runner):
            async def run_async() -> None:
                if not self.alive:
                    return
                with set_curdoc(doc):
                    await runner()

            return run_async

        def run() -> Any:
            if not self.alive:
                return None
            with set_curdoc(doc):
                return runner()

        return run


class DocumentTarget(SessionTarget):
    """A Bokeh server session: callbacks run on the document's next tick."""

    def __init__(self, doc: Document) -> None:
        super().__init__()
        self.document = doc

    def schedule(self, runner: Runner) -> bool:
        if not self.alive:
            return False

        try:
            self.document.add_next_tick_callback(self._wrap(runner))
        except Exception:
            # The document is being destroyed; its session takes no more callbacks.
            logger.debug("Could not schedule a callback on a closing session", exc_info=True)
            return False

        return True


class LoopTarget(SessionTarget):
    """A Tornado IOLoop, with ``pn.state.curdoc`` set to ``doc`` while callbacks run."""

    def __init__(self, loop: IOLoop, doc: Document | None = None) -> None:
        super().__init__()
        self.loop = loop
        self.document = doc

    def schedule(self, runner: Runner) -> bool:
        if not self.alive:
            return False

        try:
            self.loop.add_callback(self._wrap(runner))
        except RuntimeError:
            # The loop has been closed.
            logger.debug("Could not schedule a callback on a closed loop", exc_info=True)
            return False

        return True


_callback_loop: IOLoop | None = None

_callback_loop_lock = threading.Lock()


def callback_loop() -> IOLoop:
    """Return the process-wide loop thread for listeners that live outside any session."""
    global _callback_loop
    with _callback_loop_lock:
        if _callback_loop is None:
            ready = threading.Event()
            holder: list[IOLoop] = []

            def run() -> None:
                asyncio.set_event_loop(asyncio.new_event_loop())
                holder.append(IOLoop.current())
                ready.set()
                holder[0].start()

            thread = threading.Thread(target=run, name="panel-pusher-callbacks", daemon=True)
            thread.start()
            ready.wait()
            _callback_loop = holder[0]

        return _callback_loop


def target_for_display(doc: Document | None) -> SessionTarget:
    """Return the target for a listener rendered into ``doc`` on the calling thread.

    A document served by Bokeh gets a ``DocumentTarget``. Any other document
    (a notebook cell) gets the loop running on this thread, which is the
    kernel's; with no running loop, the shared callback thread.
    """
    if doc is not None and doc.session_context is not None:
        return DocumentTarget(doc)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return LoopTarget(callback_loop(), doc)

    return LoopTarget(IOLoop.current(), doc)
