"""The kernel tools' machinery in a real ipykernel, called from a worker thread the way a tool
handler calls it (through the main-thread queue): nothing leaks into cells, history is left
alone, the kernel survives ``exit()`` and interrupts, errors are found by cell."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.conftest import KernelHarness
from tests.kernel.test_mainthread_kernel import (
    eventually,
    reply_of,
    run,
    start,
    wait_for_output,
)

pytestmark = pytest.mark.kernel

SETUP = """
import threading, time
from codex_notebook.notebook.mainthread import main_queue
from codex_notebook.notebook.tools import describe, execute, kernel_state, namespace
ip = get_ipython()
q = main_queue()
watcher = kernel_state.CellWatcher(ip).install()
res = {}
def ask(fn):
    '''Call fn on the main thread from a worker, like a tool handler.'''
    res.pop('v', None)
    def worker():
        try:
            res['v'] = q.call(fn, timeout=20)
        except Exception as exc:
            res['v'] = exc
    threading.Thread(target=worker).start()
"""


@pytest.fixture
def tools(tmp_path: Path) -> Iterator[KernelHarness]:
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    harness = KernelHarness(tmp_path, env)
    try:
        run(harness, SETUP)
        yield harness
    finally:
        harness.close()


def answer_of(h: KernelHarness, expression: str) -> str:
    """Wait for the worker's result, then print ``expression`` of it (``v``)."""
    return eventually(
        h, f"if 'v' in res:\n    v = res['v']\n    print('READY', {expression})", "READY"
    )


def leaked(h: KernelHarness, needle: str) -> list[str]:
    """iopub outputs anywhere (any cell) that contain ``needle``."""
    found = []
    for m in h.messages:
        if m["msg_type"] in ("stream", "display_data", "execute_result", "error"):
            content = str(m["content"])
            if needle in content:
                found.append(m["msg_type"])
    return found


def test_execution_count_is_already_incremented_inside_a_cell(tools: KernelHarness) -> None:
    msg_id, reply = tools.execute("print(get_ipython().execution_count)")
    assert int(tools.text(msg_id)) == reply["execution_count"] + 1


def test_run_code_from_a_worker_leaves_cells_and_history_alone(tools: KernelHarness) -> None:
    run(tools, "x = 10\ncount_before = ip.execution_count")
    run(
        tools,
        "ask(lambda: execute.run_code(ip, \"print('agent' + '-out')\\n"
        "from IPython.display import display\\ndisplay('agent' + '-shown')\\nx = 32\\nx + 10\"))",
    )
    text = answer_of(
        tools,
        "v.status, v.stdout == 'agent-' + 'out\\n', v.displays == (repr('agent-' + 'shown'),),"
        " v.result, v.changes(), 42 in Out.values()",
    )
    assert "READY ok True True 42 created `display`, changed `x` False" in text
    assert leaked(tools, "agent-out") == [] and leaked(tools, "agent-shown") == []
    assert run(tools, "print(x, len(Out), 42 in Out.values())").strip() == "32 0 False"


def test_run_code_calling_exit_does_not_stop_the_kernel(tools: KernelHarness) -> None:
    run(tools, "ask(lambda: execute.run_code(ip, 'exit()'))")
    text = answer_of(tools, "ip.exit_now, 'ignored' in v.answer().text")
    assert "False True" in text
    msg_id, reply = tools.execute("print('still here')")
    assert reply["status"] == "ok" and reply.get("payload", []) == []
    assert tools.text(msg_id).strip() == "still here"


def test_run_code_help_pager_output_is_captured_not_sent_to_the_next_cell(
    tools: KernelHarness,
) -> None:
    run(tools, "ask(lambda: execute.run_code(ip, 'len?'))")
    text = answer_of(tools, "'Return the number of items' in ' '.join(v.displays)")
    assert "True" in text
    _, reply = tools.execute("1")
    assert reply.get("payload", []) == []


def test_interrupting_agent_code_on_the_idle_kernel_reports_interrupted(
    tools: KernelHarness,
) -> None:
    run(
        tools,
        "ask(lambda: execute.run_code(ip, 'import time\\nwhile True:\\n    time.sleep(0.01)'))",
    )
    import time

    time.sleep(1.0)
    tools.km.interrupt_kernel()
    text = answer_of(tools, "v.status")
    assert "interrupted" in text
    assert run(tools, "print(3 * 3)").strip() == "9"


def test_last_error_names_the_failing_cell_and_ignores_agent_errors(tools: KernelHarness) -> None:
    run(tools, "def f(v):\n    return 1 / v")
    _, reply = tools.execute("f(0)")
    assert reply["status"] == "error"
    failing = reply["execution_count"]
    run(tools, "ask(lambda: execute.run_code(ip, 'raise KeyError(1)'))")
    answer_of(tools, "v.status")
    run(tools, "ask(lambda: kernel_state.last_error_answer(ip, watcher=watcher).text)")
    text = answer_of(tools, "v")
    assert "ZeroDivisionError: division by zero" in text
    assert f"Raised by cell [{failing}]" in text and "Cell source:\nf(0)" in text
    assert "return 1 / v" in text and "\\x1b" not in text and "KeyError" not in text


def test_cells_during_a_blocking_wait_marks_the_waiting_cell_as_running(
    tools: KernelHarness,
) -> None:
    cell = start(
        tools,
        "print('waiting', flush=True)\n"
        "ask(lambda: kernel_state.cells_answer(ip, watcher=watcher).text)\n"
        "q.blocking_wait(lambda: 'v' in res, timeout=20)\n"
        "print('RUNNING-MARK' if '(running now)' in res['v'] else res['v'])",
    )
    wait_for_output(tools, cell, "waiting")
    assert reply_of(tools, cell)["status"] == "ok"
    assert "RUNNING-MARK" in tools.text(cell)


def test_inspecting_a_frame_from_a_worker_is_answered_on_the_main_thread(
    tools: KernelHarness,
) -> None:
    run(
        tools,
        "import pandas as pd\ndf = pd.DataFrame({'a': range(1000), 'password': ['pw'] * 1000})",
    )
    run(
        tools,
        "ask(lambda: describe.describe('df', namespace.resolve(ip.user_ns, 'df'), budget=5).text)",
    )
    text = answer_of(tools, "v")
    assert "1,000 rows × 2 columns" in text and "values hidden" in text


def test_a_slow_repr_is_cut_off_by_the_budget_inside_the_kernel(tools: KernelHarness) -> None:
    run(
        tools,
        "class Slow:\n    def __repr__(self):\n        time.sleep(30)\n        return 'x'\n"
        "slow = Slow()\n"
        "ask(lambda: describe.describe('slow', slow, budget=0.5).text)",
    )
    text = answer_of(tools, "v")
    assert "time budget of 0.5 s ran out" in text
