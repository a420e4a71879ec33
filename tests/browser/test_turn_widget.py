"""The %%codex widget as a person sees it, in JupyterLab and Notebook 7 (demo backend).

Markdown that renders while it streams, an approval card offering every decision the server
accepts, Run / Decline for code the agent wants to run in the kernel, "Insert below" for a
proposed cell, and a widget whose kernel restarted mid-turn: it says so, stops, and leaves a
readable unfinished copy that survives save and reload. Screenshots of each go to
``test-artifacts/browser/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Lab
from tests.browser.pages import (
    model,
    open_notebook,
    reload,
    restart_from_ui,
    run_all,
    save,
    source,
    write_notebook,
)

pytestmark = pytest.mark.browser

TURN_MS = 90_000


def open_and_run(page: Page, server: Lab, frontend: str, name: str, *cells: str) -> None:
    write_notebook(server.root, name, "%load_ext codex_notebook", *cells)
    open_notebook(page, server, frontend, name)
    run_all(page)


def widget(page: Page) -> Locator:
    return page.locator(".cxn").first


def static(page: Page) -> Locator:
    return page.locator('.jp-OutputArea-output[data-mime-type="text/html"]').filter(
        has_text="codex"
    )


def test_markdown_renders_while_it_streams(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    open_and_run(page, server, frontend, f"stream-{frontend}.ipynb", "%%codex -t s\nslow")
    live = widget(page)
    heading = live.locator(".cxn-message.cxn-live .cxn-segment h2")
    expect(heading).to_be_visible(timeout=TURN_MS)  # rendered, while the answer still streams
    expect(live.locator(".cxn-message.cxn-live .cxn-tail")).not_to_be_empty()
    expect(live.locator(".cxn-status")).to_have_text("running")
    assert "##" not in heading.inner_text()
    live.scroll_into_view_if_needed()
    shot(page, "streaming-markdown")
    expect(static(page)).to_contain_text("● completed", timeout=TURN_MS)
    page.locator(".cxn").first.wait_for(state="detached")


def test_an_approval_card_offers_every_decision_and_a_decline_says_so(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    open_and_run(
        page,
        server,
        frontend,
        f"approve-{frontend}.ipynb",
        "%%codex -t a\nTOOL:echo declined-in-browser ESCALATE",
    )
    card = widget(page).locator(".cxn-approval")
    expect(card.locator(".cxn-btn")).to_have_text(
        ["Approve", "Approve for session", "Decline", "Cancel turn"], timeout=TURN_MS
    )
    expect(card.locator(".cxn-approval-cmd")).to_have_count(1)  # the command, once
    expect(card.locator(".cxn-reason")).not_to_contain_text("`")  # inline markdown, rendered
    card.scroll_into_view_if_needed()
    shot(page, "approval-card")
    card.locator(".cxn-btn-decline").click()
    final = static(page)
    expect(final).to_contain_text("Declined by you", timeout=TURN_MS)
    expect(final).to_contain_text("declined by you")
    expect(final).not_to_contain_text("CreateProcess")


def test_code_for_the_kernel_runs_only_after_run_is_clicked(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    if frontend != "lab":
        pytest.skip("the same widget code in Notebook 7; one frontend is enough here")
    page = nb_page
    code = "answer = 41 + 1"
    open_and_run(
        page,
        server,
        frontend,
        "run-python.ipynb",
        f'%%codex -t r\nNBTOOL:run_python ARGS:{{"code": "{code}"}}',
    )
    card = widget(page).locator(".cxn-approval")
    expect(card.locator(".cxn-btn")).to_have_text(["Run", "Decline"], timeout=TURN_MS)
    expect(card.locator(".cxn-code")).to_have_text(code)
    card.scroll_into_view_if_needed()
    shot(page, "run-or-decline")
    card.locator(".cxn-btn-accept").click()
    final = static(page)
    expect(final).to_contain_text("Approved — it ran in the kernel", timeout=TURN_MS)
    expect(final).to_contain_text("changed: answer")


def test_insert_below_puts_the_proposed_cell_under_the_turn(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    name = f"propose-{frontend}.ipynb"
    open_and_run(
        page,
        server,
        frontend,
        name,
        "%%codex -t p\nDELAY_MS:300 NBTOOL:propose_cell "
        'ARGS:{"code": "print(6 * 7)", "explanation": "The `answer`."}',
        "after = 'the cell that was below'",
    )
    proposal = widget(page).locator(".cxn-proposal")
    insert = proposal.get_by_role("button", name="Insert below")
    expect(insert).to_be_visible(timeout=TURN_MS)
    expect(proposal.locator(".cxn-plan-explanation code")).to_have_text("answer")
    proposal.scroll_into_view_if_needed()
    shot(page, "proposed-cell")
    insert.click()
    expect(proposal.locator(".cxn-actions-note")).to_have_text("inserted below")
    cells = model(page, name)["cells"]
    assert [source(c) for c in cells[2:4]] == ["print(6 * 7)", "after = 'the cell that was below'"]


def test_a_kernel_restart_mid_turn_is_said_and_leaves_a_saved_unfinished_copy(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = nb_page
    name = f"restart-{frontend}.ipynb"
    open_and_run(page, server, frontend, name, "%%codex -t slow\nSLOW DELTAS:600")
    live = widget(page)
    expect(live.locator(".cxn-message.cxn-live")).to_contain_text("chunk5", timeout=TURN_MS)
    restart_from_ui(page, name)
    fallback = page.locator(".jp-OutputArea-output").filter(has_text="this turn was lost")
    expect(fallback).to_be_visible(timeout=30_000)
    expect(fallback).to_contain_text("chunk5")
    expect(page.locator(".cxn-stop:visible")).to_have_count(0)
    fallback.scroll_into_view_if_needed()
    shot(page, "after-kernel-restart")
    saved = _saved(server, page, name)
    (output,) = saved.cells[1].outputs
    assert output.metadata["codex_notebook"]["unfinished"] is True
    assert "application/vnd.jupyter.widget-view+json" not in output.data
    assert 'class="tex2jax_ignore mathjax_ignore"' in output.data["text/html"]  # not typeset
    reload(page, name)
    again = page.locator(".jp-OutputArea-output").filter(has_text="this turn was lost")
    expect(again).to_contain_text("chunk5")
    expect(page.get_by_text("Error displaying widget")).to_have_count(0)
    shot(page, "reloaded-after-restart")


def test_the_unfinished_copy_keeps_the_cells_the_agent_proposed(
    server: Lab, frontend: str, nb_page: Page
) -> None:
    page = nb_page
    name = f"restart-proposal-{frontend}.ipynb"
    open_and_run(
        page,
        server,
        frontend,
        name,
        "%%codex -t p\nDELAY_MS:2000 NBTOOL:propose_cell "
        'ARGS:{{"code": "total = 6 * 7", "explanation": "The answer."}}',
    )
    expect(widget(page).locator(".cxn-proposal")).to_be_visible(timeout=TURN_MS)
    restart_from_ui(page, name)
    fallback = page.locator(".jp-OutputArea-output").filter(has_text="this turn was lost")
    expect(fallback).to_be_visible(timeout=30_000)
    insert = page.get_by_role("button", name="Insert cell 1 below")
    expect(insert).to_be_visible()
    insert.click()
    assert source(model(page, name)["cells"][2]) == "total = 6 * 7"
    (output,) = _saved(server, page, name).cells[1].outputs
    assert output.metadata["codex_notebook"]["proposals"] == [
        {"number": 1, "code": "total = 6 * 7"}
    ]


def _saved(server: Lab, page: Page, name: str) -> Any:
    save(page, name)
    return nbformat.read(server.root / name, as_version=4)


CARD_AND_CONTROL = """\
from codex_notebook.notebook.blocks import HeaderView, MessageView
from codex_notebook.notebook.sanitize import markdown_html
from codex_notebook.notebook.static_html import render_html
text = "It costs $5 and $10; $$\\\\frac{a}{b}$$"
answer = MessageView("m", True, html_segments=(markdown_html(text),), text=text)
display({"text/html": render_html(HeaderView("main", "completed"), [answer]),
         "text/plain": text}, raw=True)
display({"text/html": "<p>control: $x^2$</p>", "text/plain": "control"}, raw=True)
"""


def test_the_static_card_is_not_typeset_as_math(server: Lab, frontend: str, nb_page: Page) -> None:
    # Notebook frontends typeset $…$ in HTML outputs: a model's "$5 and $10" must stay text
    page = nb_page
    open_and_run(page, server, frontend, f"dollars-{frontend}.ipynb", CARD_AND_CONTROL)
    control = page.locator('.jp-OutputArea-output[data-mime-type="text/html"]').filter(
        has_text="control"
    )
    expect(control.locator("mjx-container")).to_have_count(1, timeout=TURN_MS)  # typesetting ran
    card = static(page)
    expect(card).to_contain_text("It costs $5 and $10; $$\\frac{a}{b}$$")
    expect(card.locator("mjx-container")).to_have_count(0)
