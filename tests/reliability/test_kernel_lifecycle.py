"""Kernel interrupt, restart and shutdown with codex running: no orphans, no zombies, no
signals needed (how fast: bench/kernel_responsiveness.py)."""

from __future__ import annotations

import psutil
import pytest

from tests.kernel.conftest import KernelHarness, appended_text
from tests.processes import app_servers

pytestmark = pytest.mark.kernel


def _codex_descendants(pid: int) -> list[psutil.Process]:
    return app_servers(psutil.Process(pid).children(recursive=True))


def _codex_pid(kernel: KernelHarness) -> int:
    probe, _ = kernel.execute(
        "from codex_notebook.notebook.extension import current_session\n"
        "print(current_session().server.current().pid)"
    )
    return int(kernel.text(probe).strip())


def test_kernel_interrupt_during_wait_stops_the_turn_and_ends_the_cell(
    kernel: KernelHarness,
) -> None:
    msg_id = kernel.kc.execute("%%codex --wait -t w\nDELTAS:2000 DELAY_MS:20")
    widget = kernel.widget_id(msg_id)
    kernel.wait_for(lambda: appended_text(kernel, widget), what="the turn to stream")
    kernel.km.interrupt_kernel()
    kernel.wait_for(lambda: kernel._idle(msg_id), timeout=30, what="the cell to end")
    final = kernel.final_output(msg_id)
    assert final["content"]["metadata"]["codex_notebook"]["status"] == "interrupted"
    assert "Interrupted" in kernel.text(msg_id)
    _, reply = kernel.execute("1 + 1")
    assert reply["status"] == "ok"


def test_kernel_restart_leaves_no_codex_process(kernel: KernelHarness) -> None:
    cell, _ = kernel.execute("%%codex -t r\nDELTAS:2000 DELAY_MS:20")
    widget = kernel.widget_id(cell)
    kernel.wait_for(lambda: appended_text(kernel, widget), what="the turn to stream")
    codex = psutil.Process(_codex_pid(kernel))
    kernel.km.restart_kernel(now=False)
    assert psutil.wait_procs([codex], timeout=10)[1] == []
    assert not psutil.pid_exists(codex.pid)


def test_kernel_shutdown_ends_on_its_own_and_leaves_no_orphan_or_zombie(
    kernel: KernelHarness,
) -> None:
    cells = [kernel.execute(f"%%codex -t s{i}\nDELTAS:2000 DELAY_MS:20")[0] for i in range(3)]
    for cell in cells:
        widget = kernel.widget_id(cell)
        kernel.wait_for(lambda w=widget: appended_text(kernel, w), what="the turn to stream")
    kernel_pid = kernel.km.provisioner.pid  # type: ignore[union-attr]
    process = kernel.km.provisioner.process  # type: ignore[union-attr]
    codex = _codex_descendants(kernel_pid)
    assert codex
    kernel.km.shutdown_wait_time = 60  # a slow machine is not a failure; a signal would be
    kernel.km.shutdown_kernel(now=False)
    assert process.returncode == 0  # it ended on its own: no SIGTERM or SIGKILL was needed
    alive = psutil.wait_procs(codex, timeout=5)[1]
    assert alive == []
    assert not psutil.pid_exists(kernel_pid) or psutil.Process(kernel_pid).status() != "zombie"
