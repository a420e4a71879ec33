"""JupyterLab + Chromium, end to end: what a person sees and clicks.

Every test opens a notebook in a real JupyterLab (demo backend, no account), runs it from the
Run menu and looks at the page: two turns streaming at the same time while a Python cell runs,
an approval answered by its button, a turn stopped by its Stop button, the static renderings
that remain after the kernel is gone, and model text with HTML in it staying text.

Screenshots of every step go to ``test-artifacts/browser/``; one frame of the concurrency demo
is kept as ``docs/images/concurrency.png`` for the README.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import (
    ARTIFACTS,
    REPO,
    Lab,
    describe,
    end_processes,
    is_codex_process,
)
from tests.processes import alive, app_servers

pytestmark = pytest.mark.browser

# The README's picture of the concurrency demo: written when missing, or refreshed with
# CODEX_NOTEBOOK_UPDATE_SCREENSHOTS=1 (a test run must not dirty the work tree).
DOCS_SCREENSHOT = REPO / "docs" / "images" / "concurrency.png"
UPDATE_DOCS = os.environ.get("CODEX_NOTEBOOK_UPDATE_SCREENSHOTS") == "1"
KERNEL_START_S = 60_000
TURN_S = 90_000  # ms: generous for a slow demo turn on a busy machine

# A code cell's rendered output of the final static rendering (text/html from render_static).
STATIC = '.jp-OutputArea-output[data-mime-type="text/html"]'
# Statuses a widget shows once its turn is over (before the static rendering replaces it).
TERMINAL = ("completed", "interrupted", "failed", "error")

TIMINGS: dict[str, float] = {}


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module", autouse=True)
def _write_timings() -> Iterator[None]:
    yield
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")


@pytest.fixture
def step(
    request: pytest.FixtureRequest, shot: Callable[[Page, str], Path]
) -> Callable[[Page, str], contextlib.AbstractContextManager[None]]:
    """``with step(page, "name"):`` times the step and screenshots the page after it
    (also when it failed, as ``<name>-FAILED``)."""
    test = request.node.name.removeprefix("test_")

    @contextlib.contextmanager
    def run(page: Page, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                shot(page, f"{name}-FAILED")
            raise
        finally:
            TIMINGS[f"{test}: {name}"] = round(time.monotonic() - started, 2)
        shot(page, name)

    return run


@pytest.fixture
def lab_page(lab: Lab, page: Page) -> Iterator[Page]:
    """A page on the Lab; afterwards this test's kernels are shut down and their codex
    app-servers must be gone."""
    before = {k["id"] for k in lab.kernels()}
    try:
        yield page
    finally:
        with contextlib.suppress(Exception):
            page.close()
        lab.remember_descendants()
        for kernel in lab.kernels():
            if kernel["id"] not in before:
                with contextlib.suppress(Exception):
                    lab.api("DELETE", f"/api/kernels/{kernel['id']}")
        check_no_orphans(lab)


def check_no_orphans(lab: Lab) -> None:
    """Processes of kernels that are gone (app-servers, demo model servers) must be gone too."""
    live_kernels = {k["id"] for k in lab.kernels()}
    if live_kernels:
        return  # another test's kernel still runs; the module teardown checks everything
    codex = [p for p in alive(list(lab.seen.values())) if is_codex_process(p)]
    _, left = psutil.wait_procs(codex, timeout=15)
    if left:
        end_processes(left)
        raise AssertionError("codex processes outlived their kernel:\n" + describe(left))


def write_notebook(lab: Lab, name: str, *cells: str) -> None:
    """A notebook in the Lab's root, as a person would have saved it (no outputs)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, lab.root / name)


def open_notebook(page: Page, lab: Lab, name: str) -> None:
    """Open ``name`` from a URL and wait until its kernel is ready; hide the file browser.

    Each notebook gets a workspace of its own: the default one would reopen the tabs of the
    tests before."""
    page.goto(lab.url(f"/lab/workspaces/{Path(name).stem}/tree/{name}"))
    expect(page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first).to_be_visible(
        timeout=KERNEL_START_S
    )
    expect(page.locator(".jp-NotebookPanel-toolbar .jp-KernelName")).to_have_text(
        "Python 3 (ipykernel)", timeout=KERNEL_START_S
    )
    expect(
        page.locator(".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator")
    ).to_have_attribute("data-status", "idle", timeout=KERNEL_START_S)
    # More room for the notebook: collapse the left sidebar (the file browser).
    files = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if files.count():
        files.first.click()
    expect(page.locator("#jp-left-stack")).to_be_hidden()


def menu(page: Page, top: str, item: str) -> None:
    """Click a main-menu entry, as a person would (e.g. Run → Run All Cells)."""
    page.locator("#jp-MainMenu").get_by_role("menuitem", name=top, exact=True).click()
    label = page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile(f"^{re.escape(item)}$"))
    page.locator(".lm-Menu .lm-Menu-item").filter(has=label).click()


def code_cell(page: Page, first_line: str) -> Locator:
    """The code cell whose first input line is exactly ``first_line``."""
    line = page.locator(".cm-line").filter(has_text=re.compile(f"^{re.escape(first_line)}$"))
    return page.locator(".jp-CodeCell").filter(has=line.first)


def static_output(cell: Locator) -> Locator:
    return cell.locator(STATIC)


def wait_done(cell: Locator, status: str) -> Locator:
    """The turn in ``cell`` ended with ``status``: its widget was replaced by the static
    rendering (the widget itself is gone)."""
    final = static_output(cell)
    expect(final).to_contain_text(f"● {status}", timeout=TURN_S)
    expect(cell.locator(".cxn")).to_have_count(0)
    return final


def executed(cell: Locator) -> None:
    """The cell ran to the end (its prompt shows an execution count, not ``[*]``)."""
    expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]:"), timeout=TURN_S)


# ----------------------------------------------------------------------------- concurrency

# Samples, every 40 ms in the page, each watched turn's streamed answer length and status,
# and the text the ordinary Python cell printed.
SAMPLER = """
(spec) => {
  const cellOf = (first) => [...document.querySelectorAll('.jp-CodeCell')].find((c) => {
    const line = c.querySelector('.cm-line');
    return line && line.textContent === first;
  });
  const samples = [];
  window.__cxnSamples = samples;
  const t0 = performance.now();
  const tick = () => {
    const row = { t: Math.round(performance.now() - t0) };
    for (const [key, first] of Object.entries(spec.turns)) {
      const cell = cellOf(first);
      const w = cell && cell.querySelector('.cxn');
      const streaming = w ? [...w.querySelectorAll('.cxn-message.cxn-live .cxn-md')] : [];
      const done = cell && cell.querySelector(spec.static);
      row[key] = {
        status: w ? w.dataset.status : (done ? 'static' : 'none'),
        len: streaming.length ? streaming.reduce((n, e) => n + e.textContent.length, 0) : null,
      };
    }
    const py = cellOf(spec.python);
    const out = py && py.querySelector('.jp-OutputArea-output');
    row.python = out ? out.textContent : '';
    samples.push(row);
    if (!window.__cxnStopSampling) setTimeout(tick, 40);
  };
  tick();
}
"""

ALPHA = "%%codex -t alpha -o alpha"
BETA = "%%codex -t beta -o beta"
GAMMA = "%%codex -t gamma -o gamma"
ALPHA_NEXT = "%%codex -t alpha -o alpha_next"
PYTHON_CELL = "import time"


def growth_times(samples: list[dict[str, Any]], key: str, until: float) -> list[float]:
    """Times (ms) at which the streamed text of ``key`` got longer, before ``until``."""
    times = []
    previous: int | None = None
    for row in samples:
        if row["t"] >= until:
            break
        length = row[key]["len"]
        if length is not None and previous is not None and length > previous:
            times.append(row["t"])
        if length is not None:
            previous = length
    return times


def first_end(samples: list[dict[str, Any]], keys: tuple[str, ...]) -> float:
    for row in samples:
        if any(row[k]["status"] in (*TERMINAL, "static") for k in keys):
            return float(row["t"])
    raise AssertionError("no turn ended while sampling")


@pytest.mark.timeout(240)
def test_concurrency_demo(lab: Lab, lab_page: Page, step: Callable[[Page, str], Any]) -> None:
    page = lab_page
    with step(page, "open"):
        open_notebook(page, lab, "concurrency.ipynb")
        expect(code_cell(page, ALPHA)).to_be_visible()

    with step(page, "run-all"):
        page.evaluate(
            SAMPLER,
            {"turns": {"alpha": ALPHA, "beta": BETA}, "python": PYTHON_CELL, "static": STATIC},
        )
        menu(page, "Run", "Run All Cells")
        alpha, beta = code_cell(page, ALPHA), code_cell(page, BETA)
        expect(alpha.locator(".cxn")).to_have_count(1, timeout=KERNEL_START_S)
        expect(beta.locator(".cxn")).to_have_count(1, timeout=KERNEL_START_S)

    with step(page, "streaming-side-by-side"):
        # Both answers well under way, neither finished: the frame for the README.
        page.wait_for_function(
            """() => {
              const last = window.__cxnSamples.at(-1);
              return last && ['alpha', 'beta'].every((k) => last[k].len >= 320)
                || last && ['alpha', 'beta'].some((k) => last[k].status !== 'running');
            }""",
            timeout=TURN_S,
        )
        heading = page.locator(".jp-MarkdownCell").filter(has_text="Two conversations").first
        heading.evaluate("(cell) => cell.scrollIntoView({block: 'start'})")
        expect(alpha.locator(".cxn-status")).to_have_text("running")
        expect(beta.locator(".cxn-status")).to_have_text("running")
        frame = ARTIFACTS / "concurrency.png"
        page.screenshot(path=str(frame))
        if UPDATE_DOCS or not DOCS_SCREENSHOT.exists():  # keep the committed one otherwise
            DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(frame, DOCS_SCREENSHOT)

    with step(page, "all-turns-done"):
        executed(code_cell(page, "%codex wait all"))
        page.wait_for_function(
            "() => ['alpha', 'beta'].every((k) => window.__cxnSamples.at(-1)[k].status == 'static')"
        )
        page.evaluate("() => { window.__cxnStopSampling = true; }")
        samples: list[dict[str, Any]] = page.evaluate("() => window.__cxnSamples")
        (ARTIFACTS / "concurrency-samples.json").write_text(json.dumps(samples))

        end = first_end(samples, ("alpha", "beta"))
        grew_a = growth_times(samples, "alpha", end)
        grew_b = growth_times(samples, "beta", end)
        assert len(grew_a) >= 3 and len(grew_b) >= 3, (grew_a, grew_b)
        # Both grew during one and the same stretch of time, before either ended.
        assert max(grew_a[0], grew_b[0]) < min(grew_a[-1], grew_b[-1]), (grew_a, grew_b)
        # The ordinary Python cell printed its result while both were still streaming.
        printed = next((row for row in samples if "alpha finished?" in row["python"]), None)
        assert printed is not None, samples[-1]["python"]
        assert printed["t"] < end, (printed, end)
        assert "alpha finished? False | beta finished? False" in printed["python"]

        for first, status in ((ALPHA, "completed"), (BETA, "completed"), (ALPHA_NEXT, "completed")):
            final = wait_done(code_cell(page, first), status)
            expect(final).to_contain_text("demo model")
        gamma = wait_done(code_cell(page, GAMMA), "interrupted")
        expect(gamma).to_contain_text("demo model")
        expect(page.get_by_text("Error displaying widget")).to_have_count(0)
        code_cell(page, ALPHA).scroll_into_view_if_needed()

    with step(page, "saved"):
        menu(page, "File", "Save Notebook")
        expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
        saved = lab.api("GET", "/api/contents/concurrency.ipynb")["content"]
        finals = [
            out
            for cell in saved["cells"]
            for out in cell.get("outputs", [])
            if "codex_notebook" in out.get("metadata", {})
        ]
        turns = [c for c in saved["cells"] if "".join(c["source"]).startswith("%%codex")]
        assert len(finals) == len(turns) >= 4, [c.get("outputs") for c in saved["cells"]]

    with step(page, "kernel-shut-down"):
        lab.remember_descendants()
        codex = [p for p in alive(list(lab.seen.values())) if is_codex_process(p)]
        assert app_servers(codex), "no codex app-server ran under the kernel"
        menu(page, "Kernel", "Shut Down Kernel")
        expect(page.locator(".jp-NotebookPanel-toolbar .jp-KernelName")).to_have_text(
            "No Kernel", timeout=KERNEL_START_S
        )
        _, left = psutil.wait_procs(codex, timeout=20)
        assert not left, "codex processes survived the kernel:\n" + describe(left)

    with step(page, "reloaded"):
        page.reload()
        expect(page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first).to_be_visible(
            timeout=KERNEL_START_S
        )
        alpha = code_cell(page, ALPHA)
        alpha.scroll_into_view_if_needed()
        final = static_output(alpha)
        expect(final).to_contain_text("● completed")
        expect(final).to_contain_text("A slow answer")
        expect(static_output(code_cell(page, GAMMA))).to_contain_text("● interrupted")
        expect(page.locator(".cxn")).to_have_count(0)
        expect(page.get_by_text("Error displaying widget")).to_have_count(0)
        expect(page.get_by_text("Loading widget")).to_have_count(0)
        # JupyterLab starts a fresh kernel for the reopened notebook; it ran nothing, so no
        # widget state and no codex process exist: what shows is the saved static rendering.
        assert not lab.codex_processes(), describe(lab.codex_processes())


# ----------------------------------------------------------------------------- approvals

APPROVE = "%%codex -t approve"


@pytest.mark.timeout(180)
def test_approval_button(lab: Lab, lab_page: Page, step: Callable[[Page, str], Any]) -> None:
    page = lab_page
    write_notebook(
        lab,
        "approval.ipynb",
        "%load_ext codex_notebook",
        f"{APPROVE}\nTOOL:echo approved-in-browser ESCALATE",
    )
    with step(page, "open"):
        open_notebook(page, lab, "approval.ipynb")

    cell = code_cell(page, APPROVE)
    with step(page, "asks"):
        menu(page, "Run", "Run All Cells")
        approve = cell.locator(".cxn-approval .cxn-btn-accept")
        expect(approve).to_be_visible(timeout=TURN_S)
        expect(approve).to_have_text("Approve")
        expect(cell.locator(".cxn-status")).to_have_text("waiting for you")
        expect(cell.locator(".cxn-waiting")).to_be_visible()
        expect(cell.locator(".cxn-approval-cmd")).to_contain_text("approved-in-browser")

    with step(page, "approved"):
        approve.click()
        final = wait_done(cell, "completed")
        expect(final).to_contain_text("approved-in-browser")
        expect(final).to_contain_text("Approved")


# ----------------------------------------------------------------------------- stop

SLOW = "%%codex -t slow"


@pytest.mark.timeout(180)
def test_stop_button(lab: Lab, lab_page: Page, step: Callable[[Page, str], Any]) -> None:
    page = lab_page
    write_notebook(lab, "stop.ipynb", "%load_ext codex_notebook", f"{SLOW}\nSLOW DELTAS:600")
    with step(page, "open"):
        open_notebook(page, lab, "stop.ipynb")

    cell = code_cell(page, SLOW)
    with step(page, "streaming"):
        menu(page, "Run", "Run All Cells")
        answer = cell.locator(".cxn-message.cxn-live .cxn-md")
        expect(answer).to_contain_text("chunk5", timeout=TURN_S)
        expect(cell.locator(".cxn-status")).to_have_text("running")

    with step(page, "stopped"):
        started = time.monotonic()
        cell.locator(".cxn-stop").click()
        final = wait_done(cell, "interrupted")
        expect(final).to_contain_text("chunk5")  # what streamed so far is kept
        expect(final).not_to_contain_text("chunk599")
        assert time.monotonic() - started < 30  # 600 deltas × 100 ms would take a minute


# ----------------------------------------------------------------------------- html in text

HTML_TURN = "%%codex -t html"
IMG = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "<script>window.__pwned=2</script>"


@pytest.mark.timeout(180)
def test_model_html_stays_text(lab: Lab, lab_page: Page, step: Callable[[Page, str], Any]) -> None:
    page = lab_page
    write_notebook(
        lab,
        "html.ipynb",
        "%load_ext codex_notebook",
        f"{HTML_TURN}\nECHO DELAY_MS:300 {IMG} {SCRIPT}",
    )
    with step(page, "open"):
        open_notebook(page, lab, "html.ipynb")

    cell = code_cell(page, HTML_TURN)
    with step(page, "streaming"):
        menu(page, "Run", "Run All Cells")
        # The live widget shows the text as it streams (a short window: watch every frame).
        page.wait_for_function(
            """([first, text]) => {
              const cell = [...document.querySelectorAll('.jp-CodeCell')]
                .find((c) => c.querySelector('.cm-line')?.textContent === first);
              const live = cell?.querySelector('.cxn-message.cxn-live .cxn-md');
              return live?.textContent.includes(text);
            }""",
            arg=[HTML_TURN, IMG],
            timeout=TURN_S,
        )
        assert page.evaluate("() => typeof window.__pwned") == "undefined"

    with step(page, "final"):
        final = wait_done(cell, "completed")
        output = cell.locator(".jp-OutputArea")
        expect(output.locator("img")).to_have_count(0)
        expect(output.locator("script")).to_have_count(0)
        expect(final).to_contain_text(IMG)
        expect(final).to_contain_text(SCRIPT)
        assert page.evaluate("() => typeof window.__pwned") == "undefined"
