"""%%codex in a real ipykernel (jupyter_client), real codex binary, demo model.

Assertions are on the iopub messages a frontend would receive.
"""

from __future__ import annotations

import psutil
import pytest

from tests.kernel.conftest import KernelHarness, appended_text, blocks
from tests.processes import alive, app_servers

pytestmark = pytest.mark.kernel


def chunks(n: int) -> str:
    return " ".join(f"chunk{i}" for i in range(n))


def final_status(harness: KernelHarness, msg_id: str) -> str:
    final = harness.final_output(msg_id)
    return str(final["content"]["metadata"]["codex_notebook"]["status"])


def test_two_cells_stream_interleaved_into_their_own_widgets(kernel: KernelHarness) -> None:
    a, _ = kernel.execute("%%codex -t a\nDELTAS:40 DELAY_MS:25")
    b, _ = kernel.execute("%%codex -t b\nDELTAS:30 DELAY_MS:25")
    wa, wb = kernel.widget_id(a), kernel.widget_id(b)
    assert final_status(kernel, a) == final_status(kernel, b) == "completed"
    assert chunks(40) in kernel.final_output(a)["content"]["data"]["text/markdown"]
    assert chunks(30) in kernel.final_output(b)["content"]["data"]["text/markdown"]
    assert "chunk35" not in appended_text(kernel, wb), "a's text leaked into b's widget"
    order = [m["content"]["comm_id"] for m in kernel.messages if m["msg_type"] == "comm_msg"]
    a_at = [i for i, c in enumerate(order) if c == wa]
    b_at = [i for i, c in enumerate(order) if c == wb]
    assert b_at[0] < a_at[-1] and a_at[0] < b_at[-1], "the two widgets did not update concurrently"


def test_a_plain_cell_runs_while_turns_stream(kernel: KernelHarness) -> None:
    slow, _ = kernel.execute("%%codex -t slow\nDELTAS:60 DELAY_MS:50")
    plain, reply = kernel.execute("1 + 1", timeout=10)
    assert reply["status"] == "ok"
    assert "2" in kernel.text(plain)
    widget = kernel.widget_id(slow)
    assert kernel.header(widget).get("status") in ("starting", "running")
    assert final_status(kernel, slow) == "completed"


def test_same_thread_cells_queue_behind_each_other(kernel: KernelHarness) -> None:
    first, _ = kernel.execute("%%codex -t same\nDELTAS:20 DELAY_MS:30")
    second, _ = kernel.execute("%%codex -t same\nECHO and then this")
    w2 = kernel.widget_id(second)
    kernel.wait_for(
        lambda: "queued behind cell" in str(kernel.header(w2).get("detail")),
        what="the queued notice",
    )
    assert final_status(kernel, first) == "completed"
    assert final_status(kernel, second) == "completed"
    first_end = kernel.messages.index(kernel.final_output(first))
    second_left_queue = [
        i
        for i, m in enumerate(kernel.messages)
        if m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == w2
        and (m["content"]["data"].get("state") or {}).get("header", {}).get("status")
        not in (None, "queued")
    ]
    assert second_left_queue and min(second_left_queue) > first_end


def test_stop_button_interrupts_the_turn(kernel: KernelHarness) -> None:
    cell, _ = kernel.execute("%%codex -t stop\nDELTAS:400 DELAY_MS:25")
    widget = kernel.widget_id(cell)
    kernel.wait_for(lambda: appended_text(kernel, widget), what="first text")
    kernel.send_custom(widget, {"type": "stop"})
    assert final_status(kernel, cell) == "interrupted"


def test_an_approval_is_answered_by_its_button(kernel: KernelHarness) -> None:
    cell, _ = kernel.execute("%%codex -t approve\nTOOL:echo approved-in-kernel ESCALATE")
    widget = kernel.widget_id(cell)

    def approval() -> dict | None:
        return next(
            (
                b
                for b in blocks(kernel, widget)
                if b.get("kind") == "approval" and b.get("state") == "pending"
            ),
            None,
        )

    block = kernel.wait_for(approval, what="the approval buttons")
    assert kernel.header(widget)["status"] == "waiting for approval"
    kernel.send_custom(
        widget, {"type": "decision", "request": block["request"], "decision": "accept"}
    )
    final = kernel.final_output(cell)
    assert final["content"]["metadata"]["codex_notebook"]["status"] == "completed"
    assert "approved-in-kernel" in final["content"]["data"]["text/markdown"]


def test_killed_server_shows_an_error_in_every_live_widget_and_the_next_cell_works(
    kernel: KernelHarness,
) -> None:
    cells = [kernel.execute(f"%%codex -t k{i}\nDELTAS:400 DELAY_MS:25")[0] for i in range(2)]
    for cell in cells:
        widget = kernel.widget_id(cell)
        kernel.wait_for(lambda w=widget: appended_text(kernel, w), what="streaming")
    probe, _ = kernel.execute(
        "from codex_notebook.notebook.extension import current_session\n"
        "print(current_session().server.current().pid)"
    )
    pid = int(kernel.text(probe).strip())
    psutil.Process(pid).kill()
    for cell in cells:
        final = kernel.final_output(cell)
        assert final["content"]["metadata"]["codex_notebook"]["status"] == "error"
        assert "app-server stopped" in final["content"]["data"]["text/markdown"]
    after, _ = kernel.execute("%%codex -t k0\nDELTAS:3")
    assert final_status(kernel, after) == "completed"


def test_unloading_leaves_no_codex_process_behind(kernel: KernelHarness) -> None:
    cell, _ = kernel.execute("%%codex\nDELTAS:3")
    assert final_status(kernel, cell) == "completed"
    kernel_process = psutil.Process(kernel.km.provisioner.pid)  # type: ignore[union-attr]
    assert app_servers(kernel_process.children(True))
    kernel.execute("%unload_ext codex_notebook")
    assert alive(kernel_process.children(True)) == []
