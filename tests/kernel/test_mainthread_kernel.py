"""The main-thread queue in a real ipykernel (jupyter_client): idle callbacks, busy cells,
blocking waits that drain the queue and handle widget clicks, and kernel interrupts."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.conftest import KernelHarness

pytestmark = pytest.mark.kernel

SETUP = """
import threading, time
from codex_notebook.notebook.mainthread import main_queue, KernelBusyError
q = main_queue()
res = {}
"""


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[KernelHarness]:
    """A kernel with the queue imported (the extension itself is not needed here)."""
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    harness = KernelHarness(tmp_path, env)
    try:
        _, reply = harness.execute(SETUP)
        assert reply["status"] == "ok", reply
        yield harness
    finally:
        harness.close()


def run(h: KernelHarness, code: str, timeout: float = 60) -> str:
    msg_id, reply = h.execute(code, timeout)
    assert reply["status"] == "ok", (reply, h.text(msg_id))
    return h.text(msg_id)


def eventually(h: KernelHarness, code: str, expected: str, timeout: float = 20) -> str:
    """Run ``code`` until its output contains ``expected`` (the kernel is idle in between)."""
    deadline = time.monotonic() + timeout
    while True:
        text = run(h, code)
        if expected in text:
            return text
        assert time.monotonic() < deadline, f"never saw {expected!r}; last output {text!r}"
        time.sleep(0.05)


def start(h: KernelHarness, code: str) -> str:
    """Send a cell without waiting for it; returns its msg_id."""
    return str(h.kc.execute(code))


def wait_for_output(h: KernelHarness, msg_id: str, needle: str, timeout: float = 30) -> None:
    h.wait_for(lambda: needle in h.text(msg_id), timeout, f"{needle!r} in the cell's output")


def reply_of(h: KernelHarness, msg_id: str, timeout: float = 30) -> dict[str, Any]:
    while True:
        reply = h.kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            h.wait_for(lambda: h._idle(msg_id), timeout, "idle")
            return dict(reply["content"])


def test_a_worker_call_is_answered_on_the_idle_kernels_main_thread(bare: KernelHarness) -> None:
    run(
        bare,
        "def worker():\n"
        "    res['main'] = q.call(lambda: threading.current_thread() is threading.main_thread(),"
        " timeout=10)\n"
        "threading.Thread(target=worker).start()",
    )
    eventually(bare, "print(res)", "'main': True")


def test_a_call_while_a_cell_sleeps_is_kernel_busy_and_never_runs_later(
    bare: KernelHarness,
) -> None:
    run(
        bare,
        "ran = []\n"
        "def worker():\n"
        "    try:\n"
        "        q.call(lambda: ran.append(1), timeout=0.3)\n"
        "    except KernelBusyError as exc:\n"
        "        res['busy'] = str(exc)\n"
        "t = threading.Thread(target=worker); t.start()\n"
        "time.sleep(1.5)\n"
        "t.join(10)",
    )
    # The callback the call scheduled has run by now (the loop was free); the job did not.
    text = run(bare, "time.sleep(0.2)\nprint('busy' in res, ran, q.pending())")
    assert text.strip() == "True [] 0"


def test_a_blocking_wait_in_a_cell_runs_a_workers_call(bare: KernelHarness) -> None:
    text = run(
        bare,
        "done = threading.Event()\n"
        "def worker():\n"
        "    res['name'] = q.call(lambda: threading.current_thread().name, timeout=10)\n"
        "    done.set()\n"
        "threading.Thread(target=worker).start()\n"
        "print(q.blocking_wait(done, timeout=20), res['name'])",
    )
    assert text.strip() == "True MainThread"


BUTTON = """
import ipywidgets as W
order = []
button = W.Button()
clicked = threading.Event()
button.on_click(lambda _: clicked.set())
print(button.model_id)
"""


def test_a_widget_click_is_handled_during_a_blocking_wait(bare: KernelHarness) -> None:
    model_id = run(bare, BUTTON).strip()
    cell = start(
        bare,
        "print('waiting', flush=True)\n"
        "print('clicked' if q.blocking_wait(clicked, timeout=30) else 'timed out')",
    )
    wait_for_output(bare, cell, "waiting")
    sent = time.monotonic()
    bare.send_custom(model_id, {"event": "click"})
    assert reply_of(bare, cell)["status"] == "ok"
    assert time.monotonic() - sent < 20
    assert "clicked" in bare.text(cell)


def test_cells_sent_during_a_blocking_wait_run_after_it_in_order(bare: KernelHarness) -> None:
    model_id = run(bare, BUTTON).strip()
    cell = start(
        bare,
        "print('waiting', flush=True)\nq.blocking_wait(clicked, timeout=30)\norder.append(0)",
    )
    wait_for_output(bare, cell, "waiting")
    first = start(bare, "order.append(1)")
    second = start(bare, "order.append(2)")
    time.sleep(0.3)  # let both reach the kernel before the click
    bare.send_custom(model_id, {"event": "click"})
    replies = []
    for _ in range(3):
        reply = bare.kc.get_shell_msg(timeout=30)
        replies.append((reply["parent_header"]["msg_id"], reply["content"]["status"]))
    assert replies == [(cell, "ok"), (first, "ok"), (second, "ok")]
    assert run(bare, "print(order)").strip() == "[0, 1, 2]"


def test_interrupting_a_blocking_wait_raises_keyboard_interrupt_in_the_cell(
    bare: KernelHarness,
) -> None:
    cell = start(
        bare,
        "print('waiting', flush=True)\nq.blocking_wait(threading.Event(), timeout=60)",
    )
    wait_for_output(bare, cell, "waiting")
    bare.km.interrupt_kernel()
    reply = reply_of(bare, cell)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert run(bare, "print(1 + 1)").strip() == "2"


def test_interrupting_a_job_on_the_idle_kernel_stops_the_job_not_the_kernel(
    bare: KernelHarness,
) -> None:
    run(
        bare,
        "started = threading.Event()\n"
        "def job():\n"
        "    started.set()\n"
        "    time.sleep(60)\n"
        "def worker():\n"
        "    try:\n"
        "        res['job'] = q.call(job, timeout=10)\n"
        "    except Exception as exc:\n"
        "        res['job'] = type(exc).__name__\n"
        "threading.Thread(target=worker).start()",
    )
    time.sleep(1.0)  # the job is running on the main thread now (the kernel looks idle)
    bare.km.interrupt_kernel()
    text = eventually(bare, "print(res)", "'job'")
    assert "JobInterruptedError" in text
    assert run(bare, "print(started.is_set(), 2 + 2)").strip() == "True 4"


def test_a_job_waits_for_a_cell_that_awaits_instead_of_running_inside_it(
    bare: KernelHarness,
) -> None:
    # A cell with top-level await runs as a task on the kernel's loop: while it awaits, the
    # loop runs callbacks — a job must not run inside the cell (run_python would change the
    # namespace under it), only after it.
    text = run(
        bare,
        "import asyncio\n"
        "phase = 'inside the cell'\n"
        "def worker():\n"
        "    time.sleep(0.3)\n"
        "    res['seen'] = q.call(lambda: phase, timeout=10)\n"
        "threading.Thread(target=worker).start()\n"
        "await asyncio.sleep(1.5)\n"
        "phase = 'after the cell'\n"
        "print(sorted(res))",
    )
    assert text.strip() == "[]"
    eventually(bare, "print(res)", "'seen': 'after the cell'")
