"""The codex-notebook frontend extension, in JupyterLab and in Notebook 7.

Events are dispatched the way the ``%%codex`` widget dispatches them: a bubbling, composed
CustomEvent from an element inside a cell's output (here HTML outputs, and a tiny anywidget
whose button a person clicks). What matters is checked on the notebook model and in the saved
``.ipynb``, not only in the DOM. See docs/labextension.md for the contract.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import REPO, Lab, kernels_cleaned
from tests.browser.pages import (
    dispatch,
    model,
    open_notebook,
    run_all,
    save,
    source,
    wait_ready,
    write_notebook,
)

pytestmark = pytest.mark.browser

INSERT = "codex-notebook:insert-cell"
REPLACE = "codex-notebook:replace-output"
BUILT = REPO / "extension" / "labextensions" / "codex-notebook" / "package.json"
OUTPUT_MS = 60_000

OUTPUTS_CELL = "\n".join(
    [
        "from IPython.display import HTML, display",
        "display(HTML('<button id=\"first\">first output</button>'))",
        "display(HTML('<span id=\"second\">second output</span>'))",
        "print('third output')",
    ]
)
BELOW_CELL = "below = 'the cell that was below'"


def notebook_with_outputs(
    page: Page, server: Lab, frontend: str, name: str, *cells: str | tuple[str, str]
) -> None:
    """Write ``name`` (the three-output cell, then ``cells``), open it, run it all."""
    write_notebook(server.root, name, OUTPUTS_CELL, *cells)
    open_notebook(page, server, frontend, name)
    run_all(page)
    page.wait_for_function(
        "(path) => window.__cxnPage.model(path).cells[0].outputs.length === 3",
        arg=name,
        timeout=OUTPUT_MS,
    )
    expect(page.locator("#second")).to_be_visible()


def outputs_of(cell: dict[str, Any]) -> list[dict[str, Any]]:
    return list(cell["outputs"])


def html_of(output: dict[str, Any]) -> str:
    html = output["data"]["text/html"]
    return html if isinstance(html, str) else "".join(html)


# ----------------------------------------------------------------------------- page mark


def test_page_carries_the_extension_version(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    write_notebook(server.root, f"mark-{frontend}.ipynb", "1 + 1")
    open_notebook(nb_page, server, frontend, f"mark-{frontend}.ipynb")
    version = json.loads(BUILT.read_text())["version"]
    mark = nb_page.evaluate("() => document.documentElement.dataset.codexNotebookExtension")
    assert mark == version
    shot(nb_page, frontend)


# ----------------------------------------------------------------------------- insert-cell

PROPOSED = "import math\n\n\ndef area(r):\n    return math.pi * r ** 2  # π r²\n\narea(2)  \n"


def test_insert_cell_puts_the_code_right_below_and_makes_it_active(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    name = f"insert-{frontend}.ipynb"
    notebook_with_outputs(page, server, frontend, name, BELOW_CELL)
    # Run All left the last cell active; a person would be looking at the first one.
    page.evaluate("(path) => { window.__cxnPage.panel(path).content.activeCellIndex = 0; }", name)
    before = model(page, name)
    assert before["active"] == 0

    result = dispatch(
        page, name, "#second", INSERT, {"code": PROPOSED, "source": "turn 7, proposal 1"}
    )

    # Handled synchronously: the outcome is in the detail when dispatchEvent returns.
    assert result["detail"]["handled"] is True, result
    assert "error" not in result["detail"]
    assert result["defaultPrevented"] is True
    after = model(page, name)
    assert [c["cell_type"] for c in after["cells"]] == ["code", "code", "code"]
    new = after["cells"][1]
    assert source(new) == PROPOSED  # exactly, trailing spaces and all
    assert new["outputs"] == [] and new["execution_count"] is None  # not run
    assert new["metadata"]["codex_notebook"] == {"inserted_from": "turn 7, proposal 1"}
    assert source(after["cells"][2]) == BELOW_CELL
    assert outputs_of(after["cells"][0]) == outputs_of(before["cells"][0])
    assert after["active"] == 1
    assert after["mode"] == "command"
    # The new cell is on screen and shows the code.
    new_cell = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(1)
    expect(new_cell).to_have_class(re.compile(r"\bjp-mod-active\b"))
    expect(new_cell).to_be_in_viewport()
    expect(new_cell.locator(".cm-content")).to_contain_text("def area(r):")
    shot(page, frontend)


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_insert_cell_from_inside_a_shadow_root(
    server: Lab, frontend: str, nb_page: Page, mode: str
) -> None:
    """A widget may render into a shadow root: the composed event still finds its cell."""
    page = nb_page
    name = f"insert-shadow-{mode}-{frontend}.ipynb"
    notebook_with_outputs(page, server, frontend, name)
    detail = page.evaluate(
        """([path, type, mode]) => {
          const host = window.__cxnPage.panel(path).node.querySelector('#second');
          const button = document.createElement('button');
          host.attachShadow({ mode }).append(button);
          const detail = { code: 'from_the_shadow = 1' };
          const init = { bubbles: true, composed: true, detail };
          button.dispatchEvent(new CustomEvent(type, init));
          return detail;
        }""",
        [name, INSERT, mode],
    )
    assert detail["handled"] is True, detail
    assert source(model(page, name)["cells"][1]) == "from_the_shadow = 1"


def test_insert_cell_without_source_adds_no_metadata(
    server: Lab, frontend: str, nb_page: Page
) -> None:
    page = nb_page
    name = f"insert-plain-{frontend}.ipynb"
    notebook_with_outputs(page, server, frontend, name)
    result = dispatch(page, name, "#first", INSERT, {"code": "print('plain')"})
    assert result["detail"]["handled"] is True, result
    new = model(page, name)["cells"][1]
    assert source(new) == "print('plain')"
    assert "codex_notebook" not in new["metadata"]


@pytest.mark.parametrize(
    ("detail", "says"),
    [
        ({"code": 5}, "detail.code must be a string"),
        ({"code": "x", "source": ["a"]}, "detail.source must be a string"),
        ({}, "detail.code must be a string"),
    ],
)
def test_insert_cell_with_a_bad_detail_changes_nothing_and_says_why(
    server: Lab, frontend: str, nb_page: Page, detail: dict[str, Any], says: str
) -> None:
    page = nb_page
    name = f"insert-bad-{frontend}.ipynb"
    notebook_with_outputs(page, server, frontend, name)
    before = model(page, name)
    result = dispatch(page, name, "#second", INSERT, detail)
    assert result["detail"]["handled"] is False
    assert says in result["detail"]["error"]
    assert result["defaultPrevented"] is False
    assert model(page, name)["cells"] == before["cells"]


def test_events_from_outside_an_output_are_refused_or_ignored(
    server: Lab, frontend: str, nb_page: Page
) -> None:
    page = nb_page
    name = f"outside-{frontend}.ipynb"
    notebook_with_outputs(page, server, frontend, name)
    before = model(page, name)
    # From the cell's input: the panel sees it and refuses it.
    result = dispatch(page, name, ".jp-Cell .jp-InputArea", INSERT, {"code": "x = 1"})
    assert result["detail"] == {
        "code": "x = 1",
        "handled": False,
        "error": result["detail"]["error"],
    }
    assert "output" in result["detail"]["error"]
    # From outside any notebook: nobody handles it, the detail is untouched.
    outside = page.evaluate(
        """(type) => {
          const detail = { code: 'x = 1' };
          const el = document.createElement('div');
          document.body.append(el);
          el.dispatchEvent(new CustomEvent(type, { bubbles: true, composed: true, detail }));
          el.remove();
          return detail;
        }""",
        INSERT,
    )
    assert outside == {"code": "x = 1"}
    assert model(page, name)["cells"] == before["cells"]


# ----------------------------------------------------------------------------- replace-output

FALLBACK_HTML = (
    '<div class="cxn-fallback"><b>kernel restarted</b> — this turn was lost'
    '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2"></div>'
)
FALLBACK = {
    "data": {
        "text/plain": "kernel restarted — this turn was lost",
        "text/html": FALLBACK_HTML,
        "text/markdown": "**kernel restarted** — this turn was lost",
    },
    "metadata": {"codex_notebook": {"unfinished": True, "turn": "t-1"}},
}


def check_fallback(outputs: list[dict[str, Any]], original: list[dict[str, Any]]) -> None:
    """Only the second output was replaced, by exactly the fallback (its HTML sanitized)."""
    assert len(outputs) == 3
    assert outputs[0] == original[0]
    assert outputs[2] == original[2]
    second = outputs[1]
    assert second["output_type"] == "display_data"
    assert set(second["data"]) == {"text/plain", "text/html", "text/markdown"}
    plain = second["data"]["text/plain"]
    assert (plain if isinstance(plain, str) else "".join(plain)) == FALLBACK["data"]["text/plain"]
    markdown = second["data"]["text/markdown"]
    markdown = markdown if isinstance(markdown, str) else "".join(markdown)
    assert markdown == FALLBACK["data"]["text/markdown"]
    html = html_of(second)
    assert "kernel restarted" in html and "cxn-fallback" in html
    assert "<script" not in html and "onerror" not in html
    assert second["metadata"] == FALLBACK["metadata"]


def test_replace_output_replaces_only_that_output_and_survives_save_and_reload(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    name = f"replace-{frontend}.ipynb"
    notebook_with_outputs(page, server, frontend, name)
    original = outputs_of(model(page, name)["cells"][0])

    result = dispatch(page, name, "#second", REPLACE, FALLBACK)

    assert result["detail"]["handled"] is True, result
    check_fallback(outputs_of(model(page, name)["cells"][0]), original)
    fallback = page.locator(".cxn-fallback")
    expect(fallback).to_contain_text("this turn was lost")
    expect(page.locator("#second")).to_have_count(0)
    expect(page.locator("#first")).to_be_visible()
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    shot(page, f"{frontend}-replaced")

    save(page, name)
    # nbformat joins the saved multi-line strings back into one string each.
    saved = nbformat.read(server.root / name, as_version=4)
    check_fallback(saved.cells[0].outputs, original)

    page.reload()
    wait_ready(page, name)
    expect(page.locator(".cxn-fallback")).to_contain_text("this turn was lost")
    expect(page.locator("#first")).to_be_visible()
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    shot(page, f"{frontend}-reloaded")


@pytest.mark.parametrize(
    ("detail", "says"),
    [
        ({"data": {"text/html": "<b>x</b>"}}, 'must have "text/plain"'),
        ({"data": {"text/plain": "x", "application/javascript": "1"}}, "allowed"),
        ({"data": {"text/plain": "x", "text/markdown": "*x*"}}, 'needs "text/html"'),
        ({"data": {"text/plain": 3}}, "must be a string"),
        ({"data": {"text/plain": "x"}, "metadata": []}, "detail.metadata must be an object"),
    ],
)
def test_replace_output_with_a_bad_detail_changes_nothing_and_says_why(
    server: Lab, frontend: str, nb_page: Page, detail: dict[str, Any], says: str
) -> None:
    page = nb_page
    name = f"replace-bad-{frontend}.ipynb"
    notebook_with_outputs(page, server, frontend, name)
    before = model(page, name)
    result = dispatch(page, name, "#second", REPLACE, detail)
    assert result["detail"]["handled"] is False
    assert says in result["detail"]["error"], result
    assert model(page, name)["cells"] == before["cells"]


# ----------------------------------------------------------------------------- from a widget

PROPOSAL_CELL = '''\
import anywidget, traitlets

class Proposal(anywidget.AnyWidget):
    _esm = """
    export default { render({ model, el }) {
      const button = document.createElement('button');
      button.className = 'proposal';
      const supported = Boolean(document.documentElement.dataset.codexNotebookExtension);
      button.textContent = supported ? 'Insert below' : 'Copy';
      button.onclick = () => {
        const detail = { code: model.get('code'), source: 'proposal 1' };
        button.dispatchEvent(new CustomEvent('codex-notebook:insert-cell',
          { bubbles: true, composed: true, detail }));
        button.textContent = detail.handled === true ? 'Inserted' : 'Not inserted: ' + detail.error;
      };
      el.append(button);
    } };
    """
    code = traitlets.Unicode().tag(sync=True)

Proposal(code="summary = df.describe()\\nsummary\\n")'''


def test_a_widget_button_inserts_its_cell_below(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    name = f"widget-insert-{frontend}.ipynb"
    write_notebook(server.root, name, PROPOSAL_CELL, BELOW_CELL)
    open_notebook(page, server, frontend, name)
    run_all(page)
    button = page.locator("button.proposal")
    expect(button).to_have_text("Insert below", timeout=OUTPUT_MS)
    button.click()
    expect(button).to_have_text("Inserted")
    after = model(page, name)
    assert [source(c) for c in after["cells"]] == [
        PROPOSAL_CELL,
        "summary = df.describe()\nsummary\n",
        BELOW_CELL,
    ]
    assert after["active"] == 1
    shot(page, frontend)


# ----------------------------------------------------------------------------- lab only


def test_insert_targets_the_view_the_event_came_from(
    lab: Lab, page: Page, shot: Callable[[Page, str], Path]
) -> None:
    """A notebook open in two panels (File → New View): the panel clicked in gets the active
    new cell; both show it (one model)."""
    name = "two-views.ipynb"
    with kernels_cleaned(lab):
        notebook_with_outputs(page, lab, "lab", name, BELOW_CELL)
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:clone')")
        page.wait_for_function("(path) => window.__cxnPage.panels(path).length === 2", arg=name)
        clone: int = page.evaluate(
            "(path) => window.__cxnPage.panels(path)"
            ".indexOf(window.jupyterapp.shell.currentWidget)",
            name,
        )
        assert clone in (0, 1)
        original = 1 - clone
        page.evaluate(
            "(path) => window.__cxnPage.panels(path)"
            ".forEach((p) => { p.content.activeCellIndex = 0; })",
            name,
        )
        expect(page.locator("#second")).to_have_count(2)

        result = dispatch(page, name, "#second", INSERT, {"code": "in_the_clone = True"}, clone)

        assert result["detail"]["handled"] is True, result
        in_clone, in_original = model(page, name, clone), model(page, name, original)
        assert source(in_clone["cells"][1]) == "in_the_clone = True"
        assert in_clone["cells"] == in_original["cells"]
        assert in_clone["active"] == 1
        assert in_original["active"] == 0
        shot(page, "two-views")


def test_an_output_view_outside_the_notebook_is_not_handled(lab: Lab, page: Page) -> None:
    """ "Create New View for Cell Output" shows the output outside any notebook panel: the
    extension cannot tell where to insert, so nobody handles the event."""
    name = "output-view.ipynb"
    with kernels_cleaned(lab):
        notebook_with_outputs(page, lab, "lab", name)
        page.evaluate(
            "(path) => { window.__cxnPage.panel(path).content.activeCellIndex = 0; }", name
        )
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:create-output-view')")
        expect(page.locator("#second")).to_have_count(2)
        before = model(page, name)
        detail = page.evaluate(
            """(type) => {
              const outside = [...document.querySelectorAll('#second')]
                .find((el) => !el.closest('.jp-NotebookPanel'));
              const detail = { code: 'x = 1' };
              const init = { bubbles: true, composed: true, detail };
              outside.dispatchEvent(new CustomEvent(type, init));
              return detail;
            }""",
            INSERT,
        )
        assert detail == {"code": "x = 1"}
        assert model(page, name)["cells"] == before["cells"]
