"""The notebook tools in a real ipykernel, driven by the scripted fake app-server's tool calls:
reads answered on the kernel's main thread, run_python clicked in a ``--wait`` cell (the wait
handles the click and runs the code), declined, denied, interrupted, and nothing left queued."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import fake_codex_bin
from tests.kernel.conftest import KernelHarness, blocks

pytestmark = pytest.mark.kernel


@pytest.fixture
def fake_kernel(tmp_path: Path) -> Iterator[KernelHarness]:
    home = tmp_path / "codex-home"
    home.mkdir()
    env = dict(os.environ)
    env.update(
        CODEX_NOTEBOOK_BACKEND="codex",
        CODEX_BIN=fake_codex_bin(tmp_path, CODEX_HOME=str(home)),
    )
    env.pop("OPENAI_API_KEY", None)
    harness = KernelHarness(tmp_path, env)
    try:
        harness.execute("%load_ext codex_notebook")
        harness.execute("sales = [3, 1, 2]\nsecret_token = 'sk-live-abcdefghijklmnop1234'")
        yield harness
    finally:
        harness.close()


def printed(kernel: KernelHarness, code: str) -> str:
    cell, reply = kernel.execute(code)
    assert reply["status"] == "ok", kernel.text(cell)
    return kernel.text(cell)


def approval_block(kernel: KernelHarness, widget: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        return next(
            (
                b
                for b in blocks(kernel, widget)
                if b["kind"] == "approval" and b["state"] == "pending"
            ),
            None,
        )

    return dict(kernel.wait_for(find, 30, "a Run / Decline card"))


def test_a_wait_cell_whose_turn_reads_the_kernel_completes(fake_kernel: KernelHarness) -> None:
    fake_kernel.execute(
        "%%codex --wait -o t\n"
        'DYNTOOL:notebook.variables DYNTOOL:notebook.inspect ARGS:{"name":"sales"}'
    )
    text = printed(fake_kernel, "print(t.result(0).text)")
    assert "tool:notebook.variables:ok:" in text and "tool:notebook.inspect:ok:" in text
    assert "sales" in text
    assert "sk-live" not in text


def test_run_python_clicked_in_a_wait_cell_runs_in_the_user_namespace(
    fake_kernel: KernelHarness,
) -> None:
    cell = fake_kernel.kc.execute(
        '%%codex --wait -o t\nDYNTOOL:notebook.run_python ARGS:{"code":"total=sum(sales)"}'
    )
    widget = fake_kernel.widget_id(cell)
    card = approval_block(fake_kernel, widget)
    assert [d["label"] for d in card["decisions"]] == ["Run", "Decline"]
    assert card["command"] == "total=sum(sales)"
    fake_kernel.send_custom(
        widget, {"type": "decision", "request": card["request"], "decision": "accept"}
    )
    fake_kernel.wait_for(lambda: fake_kernel._idle(cell), 60, "the --wait cell to end")
    assert "completed" in str(fake_kernel.final_output(cell)["content"]["metadata"])
    assert printed(fake_kernel, "print(total)").strip() == "6"
    assert "changed: `total`" not in printed(fake_kernel, "print(t.text)")  # the model's text
    assert "total" in fake_kernel.final_output(cell)["content"]["data"]["text/markdown"]


def test_run_python_declined_in_a_wait_cell_never_runs(fake_kernel: KernelHarness) -> None:
    cell = fake_kernel.kc.execute(
        '%%codex --wait -o t\nDYNTOOL:notebook.run_python ARGS:{"code":"ran=True"}'
    )
    widget = fake_kernel.widget_id(cell)
    card = approval_block(fake_kernel, widget)
    fake_kernel.send_custom(
        widget, {"type": "decision", "request": card["request"], "decision": "decline"}
    )
    fake_kernel.wait_for(lambda: fake_kernel._idle(cell), 60, "the --wait cell to end")
    assert printed(fake_kernel, "print('ran' in globals())").strip() == "False"
    assert "declined" in printed(fake_kernel, "print(t.text)")


def test_run_python_is_refused_without_asking_under_approval_deny(
    fake_kernel: KernelHarness,
) -> None:
    fake_kernel.execute(
        '%%codex --wait --approval deny -o t\nDYNTOOL:notebook.run_python ARGS:{"code":"ran=True"}'
    )
    assert printed(fake_kernel, "print('ran' in globals())").strip() == "False"
    assert "--approval deny" in printed(fake_kernel, "print(t.text)")


def test_interrupting_the_kernel_during_approved_code_ends_cleanly(
    fake_kernel: KernelHarness,
) -> None:
    code = r"__import__(\"time\").sleep(60)"
    cell = fake_kernel.kc.execute(
        f'%%codex --wait -o t\nDYNTOOL:notebook.run_python ARGS:{{"code":"{code}"}}'
    )
    widget = fake_kernel.widget_id(cell)
    card = approval_block(fake_kernel, widget)
    fake_kernel.send_custom(
        widget, {"type": "decision", "request": card["request"], "decision": "accept"}
    )
    fake_kernel.wait_for(
        lambda: any(
            b["kind"] == "approval" and b["state"] == "decided" for b in blocks(fake_kernel, widget)
        ),
        30,
        "the card to say it was approved",
    )
    fake_kernel.km.interrupt_kernel()
    fake_kernel.wait_for(lambda: fake_kernel._idle(cell), 60, "the cell to end")
    _, reply = fake_kernel.execute("1 + 1")
    assert reply["status"] == "ok"
    assert "interrupted" in printed(fake_kernel, "print(t.text or t.state)")


def test_a_turn_stopped_while_its_code_waits_for_a_decision_leaves_nothing_queued(
    fake_kernel: KernelHarness,
) -> None:
    fake_kernel.execute('%%codex -o t\nDYNTOOL:notebook.run_python ARGS:{"code":"late=True"}')
    printed(fake_kernel, "assert t.wait_for_approval(30) is not None")
    printed(fake_kernel, "%codex interrupt")
    out = printed(
        fake_kernel,
        "from codex_notebook.notebook.mainthread import main_queue\n"
        "print(t.state, main_queue().pending(), 'late' in globals())",
    )
    assert out.split() == ["interrupted", "0", "False"]


def test_a_proposed_cell_is_inserted_below_by_insert(fake_kernel: KernelHarness) -> None:
    fake_kernel.execute(
        '%%codex --wait\nDYNTOOL:notebook.propose_cell ARGS:{"code":"print(sum(sales))"}'
    )
    cell, reply = fake_kernel.execute("%codex insert")
    assert reply["status"] == "ok"
    payload = reply.get("payload", [])
    assert [p.get("text") for p in payload if p.get("source") == "set_next_input"] == [
        "print(sum(sales))"
    ]
    assert "proposed cell 1" in fake_kernel.text(cell)
