"""The callback pool runs one session's tasks in order and different sessions in parallel."""

from __future__ import annotations

import threading
import time
from functools import partial

import panel as pn
import pytest
from bokeh.document import Document
from panel.io.state import state

from app.ordered import SessionOrderedExecutor, install


def test_one_documents_tasks_run_in_submission_order() -> None:
    pool = SessionOrderedExecutor(4)
    doc, seen, running = Document(), [], []

    def task(_doc: Document, k: int, delay: float) -> int:
        running.append(k)
        assert len(running) == 1, "two tasks of one session ran at once"
        time.sleep(delay)
        seen.append(k)
        running.remove(k)
        return k

    # the first task is the slowest: a plain pool would finish the others before it
    futs = [pool.submit(task, doc, k, 0.2 if k == 0 else 0.01) for k in range(6)]
    assert [f.result(timeout=10) for f in futs] == list(range(6))
    assert seen == list(range(6))
    assert pool.pending() == 0
    pool.shutdown()


def test_different_documents_run_in_parallel_and_partials_are_ordered() -> None:
    pool = SessionOrderedExecutor(2)
    a, b = Document(), Document()
    gate, seen = threading.Event(), []

    def blocked(_doc: Document) -> None:
        assert gate.wait(5), "the other session's task never ran"

    def opener(_doc: Document) -> None:
        gate.set()

    first = pool.submit(blocked, a)
    second = pool.submit(opener, b)  # runs while a's task waits for it
    assert second.result(timeout=5) is None and first.result(timeout=5) is None
    # Panel's state.execute(schedule="thread") submits partial(_execute_on_thread, doc, cb)
    futs = [pool.submit(partial(lambda _d, k: seen.append(k), a, k)) for k in range(5)]
    for f in futs:
        f.result(timeout=5)
    assert seen == list(range(5))
    pool.shutdown()


def test_a_failing_task_reports_its_error_and_the_queue_goes_on() -> None:
    pool = SessionOrderedExecutor(2)
    doc = Document()

    def boom(_doc: Document) -> None:
        raise ValueError("bad steps")

    bad, good = pool.submit(boom, doc), pool.submit(lambda _d: 7, doc)
    with pytest.raises(ValueError, match="bad steps"):
        bad.result(timeout=5)
    assert good.result(timeout=5) == 7
    pool.shutdown()
    with pytest.raises(RuntimeError):  # after shutdown a task fails cleanly
        pool.submit(lambda _d: 1, doc).result(timeout=5)


def test_install_sets_panels_pool_and_can_turn_it_off() -> None:
    before = pn.config.nthreads
    try:
        install(3)
        assert isinstance(state._thread_pool, SessionOrderedExecutor)
        install(3)  # idempotent
        install(0)
        assert state._thread_pool is None and pn.config.nthreads is None
    finally:
        install(before)
