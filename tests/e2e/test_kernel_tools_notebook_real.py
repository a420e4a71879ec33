"""notebooks/kernel_tools.ipynb end to end in a real kernel, for each codex build (the pinned
one and the newest on npm): the demo model calls the notebook tools through the real binary —
it inspects the DataFrame, proposes the fix of the failing cell, and runs one line once the
notebook approves."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.e2e

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "kernel_tools.ipynb"


def _run(codex_bin: str, workdir: Path) -> Any:
    shutil.copy(NOTEBOOK, workdir / NOTEBOOK.name)
    nb = nbformat.read(workdir / NOTEBOOK.name, as_version=4)
    env = dict(os.environ, CODEX_NOTEBOOK_BACKEND="demo", CODEX_BIN=codex_bin)
    for name in ("OPENAI_API_KEY", "CODEX_API_KEY"):
        env.pop(name, None)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(workdir)}},
    )  # fmt: skip
    client.execute(env=env)
    return nb


def _rendering(nb: Any, marker: str) -> str:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    finals = [o for o in cell.outputs if "codex_notebook" in o.get("metadata", {})]
    assert len(finals) == 1, cell.outputs
    return str(finals[0].data["text/markdown"])


@pytest.mark.timeout(300)
def test_the_kernel_tools_notebook_runs_on_this_codex(
    codex_bin: str, codex_version: str, tmp_path: Path
) -> None:
    nb = _run(codex_bin, tmp_path)
    look = _rendering(nb, "What data do I have")
    assert "`notebook.inspect`" in look and "6 rows × 3 columns" in look
    fixed = _rendering(nb, "--fix -o fixing")
    assert "KeyError" in fixed and 'sales["revenue"]' in fixed
    ran = _rendering(nb, 'Compute `sales.groupby("region")')
    assert "Approved — it ran in the kernel" in ran and "north    250.25" in ran
    for cell in nb.cells:
        if cell.cell_type == "code" and "%%codex" in cell.source:
            meta = next(o for o in cell.outputs if "codex_notebook" in o.get("metadata", {}))
            assert meta.metadata["codex_notebook"]["server_version"] == codex_version
