"""Every notebook in notebooks/ runs top to bottom with nbclient on the demo backend.

Each notebook is executed once (module-scoped fixture) in a scratch copy of the folder, with
widget state stored the way ``jupyter nbconvert --execute`` would; the tests then read the
executed notebook: no errors, every ``%%codex`` cell ends as its static rendering (Markdown +
HTML + provenance metadata, no live widget left), the answers say what the demo model says, and
the file round-trips through nbformat.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CELL_TIMEOUT_S = 120


@dataclass(frozen=True)
class Expect:
    """What one notebook must show once executed.

    ``statuses``: cell-source marker -> final status of that ``%%codex`` cell (others: completed).
    ``answers``: cell-source marker -> texts its final Markdown rendering must contain.
    ``outputs``: cell-source marker -> texts the cell's ordinary outputs must contain.
    ``secrets``: values the notebook defines that no ``%%codex`` output may show.
    """

    statuses: dict[str, str]
    answers: dict[str, tuple[str, ...]]
    outputs: dict[str, tuple[str, ...]]
    secrets: tuple[str, ...] = ()


EXPECTED: dict[str, Expect] = {
    "quickstart.ipynb": Expect(
        statuses={},
        answers={
            "What is a Jupyter kernel?": (
                "## Demo answer",
                "> What is a Jupyter kernel? Explain it with a small table.",
                "| Try a prompt with ",
            ),
            "same thing in one sentence": ("> Thanks! Now say the same thing in one sentence.",),
        },
        outputs={
            "%codex threads": ("main",),
            "answer.result(": ("status: completed",),
            "code_blocks =": ("1 code block(s)", "def fibonacci"),
            "%codex status": ("completed",),
        },
    ),
    "concurrency.ipynb": Expect(
        statuses={"-t gamma": "interrupted"},
        answers={
            "-t alpha -o alpha\n": ("## A slow answer", "static rendering of the final text"),
            "-t beta": ("## A slow answer", "static rendering of the final text"),
            "-o alpha_next": ("> Thanks. What should I try first?",),
            "-t gamma": ("## A slow answer",),
        },
        outputs={
            "squares = ": ("alpha finished?",),
            "%codex interrupt gamma": ("interrupted 1 turn(s)", "status: interrupted"),
            "for name, turn in": ("alpha        completed", "alpha again  completed"),
        },
    ),
    "tools_and_approvals.ipynb": Expect(
        statuses={},
        answers={
            "list the files": ("ls -l", "exited with code 0", "README.md", "not on disk"),
            "Create a file": ("hello_demo.py", "The patch was applied."),
            "-t approvals": (
                "Approved. This demo command changes nothing.",
                "Decision: **Approved**",
                "exited with code 0",
            ),
            "--approval deny": ("did not run",),
        },
        outputs={
            "commandExecution": ("ls -l", "exit code 0"),
            "importlib.util": ("add ", "hello_demo.py", "Hello, notebook!"),
            "install.decide": ("approved from code",),
            "done = install.result": ("completed",),
            "refused = denied.result": ("completed", "did not run"),
        },
    ),
    "kernel_tools.ipynb": Expect(
        secrets=("sk-demo-not-a-real-key-0123456789",),
        statuses={},
        answers={
            "What data do I have": (
                "`notebook.variables`",
                "`notebook.inspect`",
                "6 rows × 3 columns",
                "region, month, revenue",
            ),
            "--fix -o fixing": ("`notebook.last_error`", "KeyError", "Proposed cell 1"),
            'Compute `sales.groupby("region")': (
                "Approved — it ran in the kernel",
                "north    250.25",
            ),
            "--tools read": ("turned off run\\_python (--tools read)",),
        },
        outputs={
            "fix = fixing.result": ("completed", 'total = sales["revenue"].sum()'),
            "%codex insert": ("proposed cell 1 of turn",),
            "approval = compute.wait_for_approval": ("asked to run:", "east     168.75"),
        },
    ),
    "results_as_values.ipynb": Expect(
        statuses={},
        answers={
            "-o summary": ("> Compare a notebook and a script in a small table.",),
            "--schema Plan": ('"goal": "Tidy up sales_2024.csv"', '"Remove duplicate rows"'),
            "-o templated": (
                "> Suggest checks for sales_2024.csv with its 3 columns: region, month, revenue.",
            ),
            "--wait": ("> Which of those checks matters most?",),
        },
        outputs={
            "table_rows =": ("completed:", "| Try a prompt with | What happens |"),
            "plan = planning": ("Plan(goal='Tidy up sales_2024.csv'",),
            "Markdown(f": ("| 4 | Write the cleaning report | 1 | no |", "**total** | **5**"),
            'print("sent:"': ("sent: Suggest checks for sales_2024.csv with its 3 columns",),
            "waited.done()": ("done already? True", "## Demo answer"),
        },
    ),
}


@dataclass(frozen=True)
class Executed:
    name: str
    nb: Any  # nbformat.NotebookNode
    workdir: Path


def demo_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CODEX_NOTEBOOK_BACKEND"] = "demo"
    for name in ("OPENAI_API_KEY", "CODEX_API_KEY"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module", params=NOTEBOOKS)
def executed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Executed:
    name: str = request.param
    workdir = tmp_path_factory.mktemp(Path(name).stem)
    shutil.copytree(NOTEBOOKS_DIR, workdir, dirs_exist_ok=True)
    nb = nbformat.read(workdir / name, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        allow_errors=True,
        store_widget_state=True,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=demo_env())
    return Executed(name, nb, workdir)


def code_cells(nb: Any) -> list[Any]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def codex_cells(nb: Any) -> list[Any]:
    return [cell for cell in code_cells(nb) if cell.source.lstrip().startswith("%%codex")]


def cell_with(nb: Any, marker: str) -> Any:
    found = [cell for cell in code_cells(nb) if marker in cell.source]
    assert len(found) == 1, f"expected one code cell containing {marker!r}, found {len(found)}"
    return found[0]


def plain_text(cell: Any) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result"):
            data = out.get("data", {})
            parts.append(data.get("text/markdown") or data.get("text/plain", ""))
    return "".join(parts)


def static_rendering(cell: Any) -> Any:
    """The one output that replaced the turn's live widget."""
    finals = [
        out
        for out in cell.get("outputs", [])
        if out.output_type == "display_data" and "codex_notebook" in out.get("metadata", {})
    ]
    assert len(finals) == 1, (
        f"cell {cell.source!r}: expected one static rendering, got outputs "
        f"{[sorted(o.get('data', {})) for o in cell.get('outputs', [])]}"
    )
    return finals[0]


def test_every_notebook_has_expectations() -> None:
    assert len(NOTEBOOKS) >= 4
    assert set(NOTEBOOKS) == set(EXPECTED), "add the new notebook to EXPECTED"


def test_notebooks_are_saved_clean() -> None:
    for name in NOTEBOOKS:
        nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
        nbformat.validate(nb)
        assert nb.nbformat == 4
        assert nb.metadata.kernelspec.name == "python3"
        assert nb.metadata.language_info.name == "python"
        cells = code_cells(nb)
        assert cells[0].source.strip() == "%load_ext codex_notebook", name
        assert cells[-1].source.strip() == "%codex wait all", name
        assert nb.cells[0].cell_type == "markdown", f"{name} should start by explaining itself"
        for cell in cells:
            assert not cell.outputs, f"{name}: saved with outputs in {cell.source!r}"
            assert cell.execution_count is None, name
        assert "widgets" not in nb.metadata, f"{name}: saved with widget state"


def test_runs_without_errors(executed: Executed) -> None:
    for cell in code_cells(executed.nb):
        if "raises-exception" in cell.metadata.get("tags", []):  # fails on purpose
            assert any(out.output_type == "error" for out in cell.get("outputs", []))
            continue
        for out in cell.get("outputs", []):
            assert out.output_type != "error", (
                f"{executed.name}: {cell.source!r} raised {out.ename}: {out.evalue}\n"
                + "\n".join(out.traceback)
            )
            assert not (out.output_type == "stream" and out.name == "stderr"), (
                f"{executed.name}: {cell.source!r} wrote to stderr:\n{out.text}"
            )


def test_codex_cells_end_as_static_renderings(executed: Executed) -> None:
    expect = EXPECTED[executed.name]
    cells = codex_cells(executed.nb)
    assert cells, f"{executed.name} has no %%codex cell"
    for cell in cells:
        views = [o for o in cell.get("outputs", []) if WIDGET_VIEW in o.get("data", {})]
        assert not views, f"{executed.name}: {cell.source!r} still shows its live widget"
        final = static_rendering(cell)
        assert {"text/html", "text/markdown", "text/plain"} <= set(final.data)
        meta = final.metadata["codex_notebook"]
        wanted = next((s for m, s in expect.statuses.items() if m in cell.source), "completed")
        assert meta["status"] == wanted, f"{executed.name}: {cell.source!r}"
        assert meta["backend"] == "demo"
        assert meta["thread_id"] and meta["turn_id"]
        assert "demo model" in final.data["text/markdown"]


def test_answers_say_what_the_demo_model_says(executed: Executed) -> None:
    expect = EXPECTED[executed.name]
    assert expect.answers, "check at least one answer per notebook"
    for marker, texts in expect.answers.items():
        cell = cell_with(executed.nb, marker)
        markdown = static_rendering(cell).data["text/markdown"]
        for text in texts:
            assert text in markdown, f"{executed.name}: {marker!r} lacks {text!r}:\n{markdown}"
    for marker, texts in expect.outputs.items():
        shown = plain_text(cell_with(executed.nb, marker))
        for text in texts:
            assert text in shown, f"{executed.name}: {marker!r} lacks {text!r}:\n{shown}"


def test_executed_notebook_round_trips(executed: Executed) -> None:
    path = executed.workdir / f"executed_{executed.name}"
    nbformat.write(executed.nb, path)
    again = nbformat.read(path, as_version=4)
    nbformat.validate(again)
    assert len(again.cells) == len(executed.nb.cells)
    assert [c.get("outputs") for c in code_cells(again)] == [
        c.get("outputs") for c in code_cells(executed.nb)
    ]


def test_a_key_in_the_namespace_never_reaches_the_agent(executed: Executed) -> None:
    for secret in EXPECTED[executed.name].secrets:
        assert any(secret in cell.source for cell in code_cells(executed.nb))  # it is defined
        for cell in codex_cells(executed.nb):
            assert secret not in str(cell.get("outputs", [])), cell.source
