"""The "Insert cell N below" / "Copy" buttons under a finished turn's output, in JupyterLab
and Notebook 7.

When a ``%%codex`` turn ends, the kernel replaces its live widget by a static rendering
(sanitized HTML: no buttons, no scripts) and lists the cells the agent proposed in the
output's metadata (``codex_notebook.proposals``). The extension puts its own buttons under
every output whose metadata lists proposals. Checked here on notebooks written with nbformat
(opened with no kernel at all) and on a real turn against the demo backend; what matters is
read from the notebook model and the saved ``.ipynb``. See docs/labextension.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Lab
from tests.browser.pages import (
    PAGE_HELPERS,
    dialog_button,
    model,
    notebook_url,
    open_notebook,
    reload,
    run_all,
    save,
    source,
    write_notebook,
)

pytestmark = pytest.mark.browser

TURN_MS = 90_000
OPEN_MS = 60_000

TURN_CELL = "%%codex\nmake me a cell that prints the answer"
BELOW_CELL = "below = 'the cell that was below'"
FIRST = "print(6 * 7)"
SECOND = "import math\n\n\ndef area(r):\n    return math.pi * r ** 2  # π r²\n\narea(2)  \n"
PROPOSALS = [{"number": 1, "code": FIRST}, {"number": 2, "code": SECOND}]
# What a person would see in the static rendering; the buttons never come from here.
STATIC_HTML = (
    '<div class="cxn-static"><div>● completed</div>'
    "<div><b>Proposed cell 1</b><pre>print(6 * 7)</pre></div>"
    "<div><b>Proposed cell 2</b><pre>import math …</pre></div></div>"
)


# ----------------------------------------------------------------------------- helpers


def turn_output(
    proposals: list[dict[str, Any]] | None = PROPOSALS,
    html: str = STATIC_HTML,
    turn_id: str = "turn-7",
) -> Any:
    """A final rendering as the kernel leaves it: text/html + text/markdown + text/plain, and
    provenance metadata (``proposals=None``: none at all)."""
    metadata: dict[str, Any] = {}
    if proposals is not None:
        metadata["codex_notebook"] = {
            "thread_name": "t",
            "turn_id": turn_id,
            "status": "completed",
            "proposals": proposals,
        }
    return nbformat.v4.new_output(
        "display_data",
        data={
            "text/html": html,
            "text/markdown": "**Proposed cell 1**",
            "text/plain": "● completed\nProposed cell 1",
        },
        metadata=metadata,
    )


def write_saved(root: Path, name: str, *cells: tuple[str, list[Any]]) -> None:
    """A saved notebook whose cells are ``(source, outputs)``. Its kernelspec names a kernel
    the server does not have, so opening it starts none (the person picks "No Kernel")."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "no-such-kernel",
        "display_name": "Gone",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for text, outputs in cells:
        cell = nbformat.v4.new_code_cell(text)
        cell.outputs = outputs
        nb.cells.append(cell)
    nbformat.validate(nb)
    nbformat.write(nb, root / name)


def without_kernel(page: Page) -> None:
    """Answer the "Select Kernel" dialog with "No Kernel"."""
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Select Kernel", timeout=OPEN_MS)
    dialog.get_by_role("button", name="No Kernel", exact=True).click()
    expect(dialog).to_have_count(0)


def open_saved(page: Page, server: Lab, frontend: str, name: str) -> None:
    """Open a notebook written by ``write_saved``, with no kernel."""
    page.add_init_script(PAGE_HELPERS)
    page.goto(notebook_url(server, frontend, name))
    without_kernel(page)
    page.wait_for_function(
        "(path) => window.__cxnPage.panels(path).some((p) => p.context.isReady)",
        arg=name,
        timeout=OPEN_MS,
    )


def reopen_saved(page: Page, name: str) -> None:
    page.reload()
    without_kernel(page)
    page.wait_for_function(
        "(path) => window.__cxnPage.panels(path).some((p) => p.context.isReady)",
        arg=name,
        timeout=OPEN_MS,
    )


def cell_widget(page: Page, index: int) -> Locator:
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(index)


def bars_in_cell(page: Page, name: str, index: int) -> int:
    count: int = page.evaluate(
        "([path, index]) => window.__cxnPage.panel(path).content.widgets[index]"
        ".node.querySelectorAll('.cxn-proposals').length",
        [name, index],
    )
    return count


def outputs_js(page: Page, name: str, script: str) -> Any:
    """Run ``script`` with ``outputs`` = cell 0's output model (what a kernel message or a
    person's action changes)."""
    return page.evaluate(
        f"(path) => {{ const outputs = window.__cxnPage.panel(path).content.widgets[0]"
        f".model.outputs; {script} }}",
        name,
    )


# ----------------------------------------------------------------------------- saved outputs


def test_a_saved_turn_output_shows_insert_and_copy_for_each_proposed_cell(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    name = f"bar-saved-{frontend}.ipynb"
    write_saved(server.root, name, (TURN_CELL, [turn_output()]), (BELOW_CELL, []))
    open_saved(page, server, frontend, name)

    bar = cell_widget(page, 0).locator(".cxn-proposals")
    expect(bar).to_have_count(1)
    expect(bar).to_have_attribute("role", "group")
    expect(bar.get_by_role("button")).to_have_text(
        ["Insert cell 1 below", "Copy", "Insert cell 2 below", "Copy"]
    )
    expect(bar.get_by_role("button", name="Copy cell 2")).to_have_count(1)
    # The first line of each cell's code beside its buttons, as text.
    expect(bar.locator(".cxn-proposals-preview")).to_have_text(
        ["print(6 * 7)", "import math  (+3 more lines)"]
    )
    # Under the output, inside the same output item, and the output itself is untouched.
    item = cell_widget(page, 0).locator(".jp-OutputArea-child")
    expect(item.locator(".jp-OutputArea-output .cxn-static")).to_contain_text("Proposed cell 2")
    expect(cell_widget(page, 0).locator(".jp-OutputArea-child > .cxn-proposals")).to_have_count(1)
    out_box, bar_box = (
        item.locator(".jp-OutputArea-output").bounding_box(),
        bar.bounding_box(),
    )
    assert out_box is not None and bar_box is not None
    assert bar_box["y"] >= out_box["y"] + out_box["height"] - 1
    assert abs(bar_box["x"] + _padding_left(bar) - out_box["x"]) <= 2
    # Nothing in the model changed: no kernel, not dirty, no cell added.
    assert server.kernels() == []
    after = model(page, name)
    assert after["dirty"] is False
    assert [source(c) for c in after["cells"]] == [TURN_CELL, BELOW_CELL]
    bar.scroll_into_view_if_needed()
    shot(page, "toolbar")


def _padding_left(bar: Locator) -> float:
    value: str = bar.evaluate("(el) => getComputedStyle(el).paddingLeft")
    return float(value.removesuffix("px"))


def test_insert_cell_n_below_puts_exactly_that_code_under_the_cell(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    name = f"bar-insert-{frontend}.ipynb"
    write_saved(server.root, name, (TURN_CELL, [turn_output()]), (BELOW_CELL, []))
    open_saved(page, server, frontend, name)
    bar = cell_widget(page, 0).locator(".cxn-proposals")

    bar.get_by_role("button", name="Insert cell 2 below").click()

    expect(bar.locator(".cxn-proposals-status")).to_have_text("Inserted cell 2 below.")
    after = model(page, name)
    assert [source(c) for c in after["cells"]] == [TURN_CELL, SECOND, BELOW_CELL]
    new = after["cells"][1]
    assert new["cell_type"] == "code"
    assert new["outputs"] == [] and new["execution_count"] is None  # not run
    assert new["metadata"]["codex_notebook"] == {"inserted_from": "turn turn-7, proposal 2"}
    assert after["active"] == 1
    assert after["mode"] == "command"
    expect(cell_widget(page, 1)).to_have_class(re.compile(r"\bjp-mod-active\b"))
    expect(cell_widget(page, 1).locator(".cm-content")).to_contain_text("def area(r):")
    # The turn's output keeps its bar (it was not re-rendered by the insertion).
    expect(cell_widget(page, 0).locator(".cxn-proposals")).to_have_count(1)
    shot(page, "inserted")

    save(page, name)
    saved = nbformat.read(server.root / name, as_version=4)
    assert [c.source for c in saved.cells] == [TURN_CELL, SECOND, BELOW_CELL]
    assert saved.cells[0].outputs[0].metadata["codex_notebook"]["proposals"] == PROPOSALS


def test_the_buttons_work_from_the_keyboard(server: Lab, frontend: str, nb_page: Page) -> None:
    """Focusable buttons; Enter on one is the button's, not a notebook shortcut."""
    page = nb_page
    name = f"bar-keyboard-{frontend}.ipynb"
    write_saved(server.root, name, (TURN_CELL, [turn_output()]), (BELOW_CELL, []))
    open_saved(page, server, frontend, name)
    insert = cell_widget(page, 0).get_by_role("button", name="Insert cell 1 below")
    insert.focus()
    expect(insert).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(insert).not_to_be_focused()
    page.keyboard.press("Tab")
    expect(insert).to_be_focused()

    page.keyboard.press("Enter")

    after = model(page, name)
    assert [source(c) for c in after["cells"]] == [TURN_CELL, FIRST, BELOW_CELL]
    assert after["active"] == 1 and after["mode"] == "command"

    second = cell_widget(page, 0).get_by_role("button", name="Insert cell 2 below")
    second.focus()
    page.keyboard.press("Space")

    after = model(page, name)
    assert [source(c) for c in after["cells"]] == [TURN_CELL, SECOND, FIRST, BELOW_CELL]
    assert after["active"] == 1 and after["mode"] == "command"

    # Keys typed on a focused button are not notebook shortcuts: D D deletes no cell.
    copy = cell_widget(page, 0).get_by_role("button", name="Copy cell 1")
    copy.focus()
    page.keyboard.press("d")
    page.keyboard.press("d")
    expect(copy).to_be_focused()
    assert [source(c) for c in model(page, name)["cells"]] == [
        TURN_CELL,
        SECOND,
        FIRST,
        BELOW_CELL,
    ]


def test_copy_puts_exactly_the_code_on_the_clipboard(
    server: Lab, frontend: str, nb_page: Page
) -> None:
    page = nb_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    name = f"bar-copy-{frontend}.ipynb"
    write_saved(server.root, name, (TURN_CELL, [turn_output()]), (BELOW_CELL, []))
    open_saved(page, server, frontend, name)
    bar = cell_widget(page, 0).locator(".cxn-proposals")

    bar.get_by_role("button", name="Copy cell 2").click()

    expect(bar.locator(".cxn-proposals-status")).to_have_text("Copied cell 2.")
    assert page.evaluate("() => navigator.clipboard.readText()") == SECOND
    assert [source(c) for c in model(page, name)["cells"]] == [TURN_CELL, BELOW_CELL]


def test_the_bar_survives_rerendering_and_reload_without_duplicates(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    name = f"bar-rerender-{frontend}.ipynb"
    write_saved(server.root, name, (TURN_CELL, [turn_output()]), (BELOW_CELL, []))
    open_saved(page, server, frontend, name)
    cell = cell_widget(page, 0)
    bar = cell.locator(".cxn-proposals")
    expect(bar).to_have_count(1)
    bar.evaluate("(el) => { el.dataset.testMark = 'kept'; }")

    # The same output again (a kernel's idempotent update by display id): rendered in place,
    # the bar is kept as it is.
    outputs_js(page, name, "outputs.set(0, outputs.get(0).toJSON());")
    outputs_js(page, name, "outputs.set(0, outputs.get(0).toJSON());")
    expect(cell.locator(".cxn-static")).to_have_count(1)
    assert bars_in_cell(page, name, 0) == 1
    expect(bar).to_have_attribute("data-test-mark", "kept")

    # Trusting the notebook re-creates every output model.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:trust'); }")
    dialog_button(page, "Trust")
    page.wait_for_function(
        "(path) => window.__cxnPage.panel(path).content.widgets[0].model.outputs.get(0).trusted",
        arg=name,
    )
    assert bars_in_cell(page, name, 0) == 1

    # Another rendering (plain text now): a new output item, one new bar.
    outputs_js(
        page,
        name,
        "const json = outputs.get(0).toJSON();"
        "outputs.set(0, { ...json, data: { 'text/plain': 'plain now' } });",
    )
    expect(cell.locator(".jp-OutputArea-output")).to_have_text("plain now")
    assert bars_in_cell(page, name, 0) == 1
    expect(bar.get_by_role("button")).to_have_count(4)

    # Collapsing and expanding the output keeps the one bar.
    page.evaluate(
        "(path) => { const c = window.__cxnPage.panel(path).content.widgets[0];"
        " c.outputHidden = true; c.outputHidden = false; }",
        name,
    )
    expect(bar).to_be_visible()
    assert bars_in_cell(page, name, 0) == 1

    # Saved and reopened: there again, once.
    save(page, name)
    reopen_saved(page, name)
    expect(cell_widget(page, 0).locator(".cxn-proposals")).to_have_count(1)
    expect(cell_widget(page, 0).locator(".cxn-proposals-insert")).to_have_text(
        ["Insert cell 1 below", "Insert cell 2 below"]
    )
    assert bars_in_cell(page, name, 0) == 1
    shot(page, "reopened")


def test_changed_proposals_replace_the_buttons(server: Lab, frontend: str, nb_page: Page) -> None:
    page = nb_page
    name = f"bar-changed-{frontend}.ipynb"
    write_saved(server.root, name, (TURN_CELL, [turn_output()]), (BELOW_CELL, []))
    open_saved(page, server, frontend, name)
    cell = cell_widget(page, 0)
    expect(cell.locator(".cxn-proposals-insert")).to_have_count(2)
    outputs_js(
        page,
        name,
        "const json = outputs.get(0).toJSON();"
        "json.metadata.codex_notebook.proposals = [{ number: 3, code: 'third = 3' }];"
        "outputs.set(0, json);",
    )
    expect(cell.locator(".cxn-proposals-insert")).to_have_text(["Insert cell 3 below"])
    assert bars_in_cell(page, name, 0) == 1
    cell.get_by_role("button", name="Insert cell 3 below").click()
    assert [source(c) for c in model(page, name)["cells"]] == [TURN_CELL, "third = 3", BELOW_CELL]


def test_clearing_the_output_removes_the_bar(server: Lab, frontend: str, nb_page: Page) -> None:
    page = nb_page
    name = f"bar-clear-{frontend}.ipynb"
    write_saved(server.root, name, (TURN_CELL, [turn_output()]), (BELOW_CELL, []))
    open_saved(page, server, frontend, name)
    expect(page.locator(".cxn-proposals")).to_have_count(1)
    page.evaluate(
        "(path) => { window.__cxnPage.panel(path).content.activeCellIndex = 0;"
        " return window.jupyterapp.commands.execute('notebook:clear-cell-output'); }",
        name,
    )
    expect(page.locator(".cxn-static")).to_have_count(0)
    expect(page.locator(".cxn-proposals")).to_have_count(0)
    assert bars_in_cell(page, name, 0) == 0
    assert model(page, name)["cells"][0]["outputs"] == []


def test_outputs_without_proposals_get_no_bar(server: Lab, frontend: str, nb_page: Page) -> None:
    page = nb_page
    name = f"bar-none-{frontend}.ipynb"
    no_metadata = turn_output(proposals=None)
    empty = turn_output(proposals=[])
    malformed = turn_output(
        proposals=[
            {"number": "1", "code": "x = 1"},
            {"number": 0, "code": "x = 1"},
            {"number": 2.5, "code": "x = 1"},
            {"number": 3, "code": ["x = 1"]},
            {"number": 4},
            "proposal 5",
        ]
    )
    stream = nbformat.v4.new_output("stream", name="stdout", text="42\n")
    result = nbformat.v4.new_output(
        "execute_result",
        data={"text/plain": "42"},
        metadata={"codex_notebook": {"proposals": "print(1)"}},
        execution_count=1,
    )
    with_proposals = turn_output(proposals=[{"number": 1, "code": FIRST}])
    write_saved(
        server.root,
        name,
        ("print(42)", [stream, result]),
        (TURN_CELL, [no_metadata, empty, malformed, with_proposals]),
    )
    open_saved(page, server, frontend, name)
    cell = cell_widget(page, 1)
    expect(cell.locator(".jp-OutputArea-child")).to_have_count(4)
    # Only the fourth output, the one with a proposal, has a bar.
    items = cell.locator(".jp-OutputArea-child")
    expect(items.nth(3).locator(".cxn-proposals-insert")).to_have_text(["Insert cell 1 below"])
    for index in range(3):
        expect(items.nth(index).locator(".cxn-proposals")).to_have_count(0)
    assert bars_in_cell(page, name, 0) == 0
    assert bars_in_cell(page, name, 1) == 1
    expect(page.locator(".jp-OutputArea-child.cxn-proposals-host")).to_have_count(1)


def test_the_preview_shows_direction_controls_and_the_whole_code_on_hover(
    server: Lab, frontend: str, nb_page: Page
) -> None:
    page = nb_page
    name = f"bar-bidi-{frontend}.ipynb"
    # Displayed raw, U+202E would reverse the rest of the line: what runs is not what reads.
    code = 'access = "user\u202e \u2066# admin\u2069 \u2066"\nprint(access)\n'
    write_saved(
        server.root,
        name,
        (TURN_CELL, [turn_output(proposals=[{"number": 1, "code": code}])]),
        (BELOW_CELL, []),
    )
    open_saved(page, server, frontend, name)
    preview = (
        cell_widget(page, 0)
        .locator(".jp-OutputArea-child > .cxn-proposals")
        .locator(".cxn-proposals-preview")
    )
    expect(preview).to_have_text(
        'access = "user⟨U+202E⟩ ⟨U+2066⟩# admin⟨U+2069⟩ ⟨U+2066⟩"  (+1 more line)'
    )
    assert preview.get_attribute("title") == (
        'access = "user⟨U+202E⟩ ⟨U+2066⟩# admin⟨U+2069⟩ ⟨U+2066⟩"\nprint(access)\n'
    )


def test_proposed_code_that_looks_like_html_is_inserted_as_text(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    name = f"bar-html-{frontend}.ipynb"
    code = (
        '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\n'
        "html = '</code></div><button class=\"cxn-proposals-button\">Insert</button>'\n"
    )
    # The output's HTML pretends to be a bar too: it is sanitized output, never a control.
    fake = (
        '<div class="cxn-proposals"><button class="cxn-proposals-insert"'
        ' onclick="window.__pwned = 3">Insert cell 9 below</button></div>'
    )
    write_saved(
        server.root,
        name,
        (TURN_CELL, [turn_output(proposals=[{"number": 1, "code": code}], html=fake)]),
        (BELOW_CELL, []),
    )
    open_saved(page, server, frontend, name)
    bar = cell_widget(page, 0).locator(".jp-OutputArea-child > .cxn-proposals")
    expect(bar.get_by_role("button")).to_have_text(["Insert cell 1 below", "Copy"])
    preview = bar.locator(".cxn-proposals-preview")
    expect(preview).to_have_text(
        '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>  (+1 more line)'
    )
    assert preview.evaluate("(el) => el.children.length") == 0  # text, no elements
    expect(bar.locator("img, script")).to_have_count(0)
    # The only buttons that insert anything are the extension's; the bar's styles do not
    # reach look-alikes in the output's HTML.
    fake_button = cell_widget(page, 0).locator(".jp-OutputArea-output button")
    if fake_button.count():
        ours = _colors(bar.get_by_role("button", name="Insert cell 1 below"))
        assert _colors(fake_button.first) != ours
        fake_button.first.click()
    assert [source(c) for c in model(page, name)["cells"]] == [TURN_CELL, BELOW_CELL]

    bar.get_by_role("button", name="Insert cell 1 below").click()

    assert [source(c) for c in model(page, name)["cells"]] == [TURN_CELL, code, BELOW_CELL]
    expect(cell_widget(page, 1).locator(".cm-content")).to_contain_text("<script>")
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    bar.scroll_into_view_if_needed()
    shot(page, "html-as-text")


def test_the_bar_follows_the_dark_theme(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    name = f"bar-dark-{frontend}.ipynb"
    write_saved(server.root, name, (TURN_CELL, [turn_output()]), (BELOW_CELL, []))
    open_saved(page, server, frontend, name)
    copy = cell_widget(page, 0).get_by_role("button", name="Copy cell 1")
    light = _colors(copy)
    try:
        _theme(page, "JupyterLab Dark")
        expect(copy).not_to_have_css("background-color", light["background"])
        dark = _colors(copy)
        # Light text on a dark button in the dark theme, the reverse in the light one.
        assert _luminance(dark["background"]) < 0.3 < _luminance(dark["color"])
        assert _luminance(light["background"]) > 0.7 > _luminance(light["color"])
        cell_widget(page, 0).locator(".cxn-proposals").scroll_into_view_if_needed()
        shot(page, "dark")
    finally:
        _theme(page, "JupyterLab Light")


def _colors(button: Locator) -> dict[str, str]:
    colors: dict[str, str] = button.evaluate(
        "(el) => { const s = getComputedStyle(el);"
        " return { background: s.backgroundColor, color: s.color }; }"
    )
    return colors


def _luminance(css: str) -> float:
    red, green, blue = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _theme(page: Page, theme: str) -> None:
    page.evaluate(
        "(theme) => window.jupyterapp.commands.execute('apputils:change-theme', { theme })",
        theme,
    )
    # JupyterLab shows its splash screen while the theme's CSS loads.
    page.wait_for_function(
        "(theme) => document.body.dataset.jpThemeName === theme"
        " && !document.getElementById('jupyterlab-splash')",
        arg=theme,
        timeout=30_000,
    )


# ----------------------------------------------------------------------------- a real turn


def test_a_finished_turn_leaves_working_buttons_under_its_static_rendering(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    name = f"bar-live-{frontend}.ipynb"
    # Doubled braces: %%codex fills {expressions} in from the namespace.
    turn = '%%codex\nNBTOOL:propose_cell ARGS:{{"code": "print(6 * 7)"}}'
    write_notebook(server.root, name, "%load_ext codex_notebook", turn, BELOW_CELL)
    open_notebook(page, server, frontend, name)
    run_all(page)
    turn_cell = cell_widget(page, 1)
    bar = turn_cell.locator(".cxn-proposals")
    expect(bar.get_by_role("button")).to_have_text(["Insert cell 1 below", "Copy"], timeout=TURN_MS)
    # The live widget is gone: the bar sits under the kernel's static rendering.
    expect(page.locator(".cxn")).to_have_count(0, timeout=TURN_MS)
    output = model(page, name)["cells"][1]["outputs"]
    assert len(output) == 1
    assert "text/html" in output[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in output[0]["data"]
    ours = output[0]["metadata"]["codex_notebook"]
    assert ours["proposals"] == [{"number": 1, "code": "print(6 * 7)"}]
    expect(turn_cell.locator(".jp-OutputArea-output")).to_contain_text("Proposed cell 1")
    assert bars_in_cell(page, name, 1) == 1
    bar.scroll_into_view_if_needed()
    shot(page, "after-a-turn")

    bar.get_by_role("button", name="Insert cell 1 below").click()

    after = model(page, name)
    assert [source(c) for c in after["cells"][1:]] == [turn, "print(6 * 7)", BELOW_CELL]
    assert after["cells"][2]["metadata"]["codex_notebook"] == {
        "inserted_from": f"turn {ours['turn_id']}, proposal 1"
    }
    assert after["active"] == 2

    save(page, name)
    reload(page, name)
    bar = cell_widget(page, 1).locator(".cxn-proposals")
    expect(bar.get_by_role("button")).to_have_text(["Insert cell 1 below", "Copy"])
    assert bars_in_cell(page, name, 1) == 1
    assert [source(c) for c in model(page, name)["cells"][1:]] == [
        turn,
        "print(6 * 7)",
        BELOW_CELL,
    ]
    shot(page, "after-a-turn-reloaded")
