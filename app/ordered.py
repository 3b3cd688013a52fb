"""Widget callbacks in threads, but one at a time per session, in the order they arrived.

Panel's ``config.nthreads`` hands every widget change and event to a plain thread pool, so two
messages of one browser tab can run at once and finish in either order. Seen in this app
(issue 16): a click on "Run" handled before the steps box's new value (the rollout ran with the
old number of steps), and FileDropper's second chunk of an upload handled before its first
(``KeyError`` on the file's name, the upload lost). ``SessionOrderedExecutor`` keeps the pool's
threads for different sessions and runs the tasks of one Bokeh document strictly in submission
order (Bokeh receives a tab's messages in order on the event loop, so submission order is the
order the user acted in).

A task must not wait for a later task of its own session (it would wait forever); Panel never
does, and the dashboards hand their long work to their own executors.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from bokeh.document import Document

__all__ = ["SessionOrderedExecutor", "install"]


def _document_of(fn, args: tuple) -> Document | None:
    """The document a Panel task belongs to: its first argument (``submit(self._change_event,
    doc)``) or its partial's (``partial(state._execute_on_thread, doc, callback)``)."""
    if args and isinstance(args[0], Document):
        return args[0]
    if isinstance(fn, partial) and fn.args and isinstance(fn.args[0], Document):
        return fn.args[0]
    return None


class SessionOrderedExecutor(ThreadPoolExecutor):
    """A thread pool in which the tasks of one Bokeh document run one at a time, in order."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers, thread_name_prefix="scifm-callback")
        self._order = threading.Lock()
        self._waiting: dict[Document, deque] = {}  # a document with a task running -> its next

    def submit(self, fn, /, *args, **kwargs) -> Future:
        doc = _document_of(fn, args)
        if doc is None:
            return super().submit(fn, *args, **kwargs)
        outer: Future = Future()
        with self._order:
            if doc in self._waiting:
                self._waiting[doc].append((fn, args, kwargs, outer))
                return outer
            self._waiting[doc] = deque()
        self._start(doc, fn, args, kwargs, outer)
        return outer

    def pending(self) -> int:
        """Tasks waiting behind a running task of their session."""
        with self._order:
            return sum(len(q) for q in self._waiting.values())

    def _start(self, doc: Document, fn, args: tuple, kwargs: dict, outer: Future) -> None:
        try:
            inner = super().submit(fn, *args, **kwargs)
        except RuntimeError as exc:  # the pool is shut down: fail this task and the queue
            self._fail(doc, outer, exc)
            return
        inner.add_done_callback(lambda f: self._finished(doc, f, outer))

    def _finished(self, doc: Document, inner: Future, outer: Future) -> None:
        if inner.cancelled():
            outer.cancel()
        elif (exc := inner.exception()) is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(inner.result())
        with self._order:
            queue = self._waiting.get(doc)
            if not queue:
                self._waiting.pop(doc, None)
                return
            nxt = queue.popleft()
        self._start(doc, *nxt)

    def _fail(self, doc: Document, outer: Future, exc: BaseException) -> None:
        with self._order:
            rest = self._waiting.pop(doc, deque())
        for fut in [outer, *(task[-1] for task in rest)]:
            if not fut.done():
                fut.set_exception(exc)


def install(nthreads: int | None) -> None:
    """Set Panel's callback pool: ``nthreads`` ordered threads, or callbacks on the event loop
    when ``nthreads`` is 0/None (``pn.config.nthreads`` semantics)."""
    import panel as pn
    from panel.io.state import state

    want = nthreads or None
    if pn.config.nthreads != want:
        if state._thread_pool is not None:  # Panel refuses to replace a running pool
            state._thread_pool.shutdown(wait=False)
            state._thread_pool = None
        pn.config.nthreads = want  # Panel makes its plain pool, or none
    if want and not isinstance(state._thread_pool, SessionOrderedExecutor):
        old, state._thread_pool = state._thread_pool, SessionOrderedExecutor(want)
        if old is not None:
            old.shutdown(wait=False)
