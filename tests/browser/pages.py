"""Opening notebooks and reading their models in JupyterLab and Notebook 7 (shared helpers).

The servers expose the application as ``window.jupyterapp`` (see conftest.serve), so a test
reads the notebook *model* (cells, outputs, active cell) the way a save would, instead of
inferring it from the DOM. ``window.__cxnPage`` holds the small page-side helpers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
from playwright.sync_api import Page

from tests.browser.conftest import Lab

KERNEL_START_MS = 60_000
RESTART_MS = 60_000

# Installed before the application loads; everything reads window.jupyterapp lazily.
PAGE_HELPERS = """
window.__cxnPage = {
  panels(path) {
    const app = window.jupyterapp;
    if (!app) return [];
    return Array.from(app.shell.widgets('main')).filter(
      (w) => w.context && w.context.path === path && w.content && w.content.model
    );
  },
  panel(path, index) {
    const panel = this.panels(path)[index || 0];
    if (!panel) throw new Error(`no notebook panel for ${path} (#${index || 0})`);
    return panel;
  },
  ready(path) {
    const panel = this.panels(path)[0];
    const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
    return !!(kernel && kernel.status === 'idle' && panel.content.widgets.length);
  },
  model(path, index) {
    const panel = this.panel(path, index);
    return {
      cells: panel.content.model.toJSON().cells,
      active: panel.content.activeCellIndex,
      mode: panel.content.mode,
      dirty: panel.context.model.dirty,
    };
  },
  // Dispatch `type` from the element matching `selector` inside panel #index of `path`;
  // return what dispatchEvent returned and the detail the extension wrote into.
  dispatch(path, index, selector, type, detail) {
    const root = this.panel(path, index).node;
    const target = root.querySelector(selector);
    if (!target) throw new Error(`nothing matches ${selector}`);
    const init = { bubbles: true, composed: true, cancelable: true, detail };
    const event = new CustomEvent(type, init);
    const returned = target.dispatchEvent(event);
    return { returned, detail: event.detail, defaultPrevented: event.defaultPrevented };
  },
};
"""


def write_notebook(root: Path, name: str, *cells: str | tuple[str, str]) -> None:
    """A notebook as a person would have saved it (no outputs); a cell is its source, or
    ``("markdown", source)``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for cell in cells:
        if isinstance(cell, tuple):
            nb.cells.append(nbformat.v4.new_markdown_cell(cell[1]))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(cell))
    nbformat.write(nb, root / name)


def notebook_url(server: Lab, frontend: str, name: str) -> str:
    if frontend == "lab":
        # A workspace per notebook: the default one would reopen earlier tests' tabs.
        return server.url(f"/lab/workspaces/{Path(name).stem}/tree/{name}")
    return server.url(f"/notebooks/{name}")


def open_notebook(page: Page, server: Lab, frontend: str, name: str) -> None:
    """Open ``name`` and wait until its kernel is idle."""
    page.add_init_script(PAGE_HELPERS)
    page.goto(notebook_url(server, frontend, name))
    wait_ready(page, name)


def wait_ready(page: Page, name: str) -> None:
    page.wait_for_function(
        "(path) => window.__cxnPage && window.__cxnPage.ready(path)",
        arg=name,
        timeout=KERNEL_START_MS,
    )


def run_all(page: Page) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def save(page: Page, name: str) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "(path) => !window.__cxnPage.model(path).dirty", arg=name, timeout=15_000
    )


def model(page: Page, name: str, index: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "([path, index]) => window.__cxnPage.model(path, index)", [name, index]
    )
    return result


def dispatch(
    page: Page, name: str, selector: str, event: str, detail: Any, index: int = 0
) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "([path, index, selector, type, detail]) =>"
        " window.__cxnPage.dispatch(path, index, selector, type, detail)",
        [name, index, selector, event, detail],
    )
    return result


def source(cell: dict[str, Any]) -> str:
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


def kernel_menu(page: Page, item: str) -> None:
    page.get_by_role("menuitem", name="Kernel", exact=True).click()
    label = page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile(f"^{re.escape(item)}$"))
    page.locator(".lm-Menu .lm-Menu-item").filter(has=label).click()


def dialog_button(page: Page, text: str) -> None:
    page.locator(".jp-Dialog button").filter(has_text=re.compile(f"^{re.escape(text)}$")).click()


def restart_from_ui(page: Page, name: str) -> None:
    kernel_menu(page, "Restart Kernel…")
    dialog_button(page, "Restart")
    page.wait_for_function("(path) => window.__cxnPage.ready(path)", arg=name, timeout=RESTART_MS)


def reload(page: Page, name: str) -> None:
    """Reload the page; the notebook reopens with a kernel (a new one if it had none)."""
    page.reload()
    wait_ready(page, name)
