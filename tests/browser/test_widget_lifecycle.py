"""What an anywidget view observes when its kernel or page goes away (the facts the %%codex
widget's "kernel restarted" handling is built on; docs/labextension.md explains them).

A probe widget (lifecycle_probe.js) streams a counter from a kernel thread, like a running
turn, and logs every model event, the abort of anywidget's render signal, the kernel
connection's status, and whether ``model.send`` throws. Each scenario asserts what the widget
code relies on, keeps the log as ``test-artifacts/browser/lifecycle-<scenario>.json`` and
screenshots the probe.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, Lab
from tests.browser.pages import (
    kernel_menu,
    model,
    open_notebook,
    reload,
    restart_from_ui,
    run_all,
    save,
    wait_ready,
    write_notebook,
)
from tests.processes import cmdline

pytestmark = pytest.mark.browser

PROBE_JS = Path(__file__).with_name("lifecycle_probe.js")
RESTART_MS = 60_000
WIDGET_SETTINGS = Path("@jupyter-widgets") / "jupyterlab-manager" / "plugin.jupyterlab-settings"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
KERNEL_SETTINGS = (
    Path("@jupyterlab") / "apputils-extension" / "kernels-settings.jupyterlab-settings"
)

PROBE_CELL = """\
import pathlib, threading, time
import anywidget, traitlets

class Probe(anywidget.AnyWidget):
    _esm = pathlib.Path("lifecycle_probe.js").read_text()
    label = traitlets.Unicode().tag(sync=True)
    count = traitlets.Int(0).tag(sync=True)
    fallback = traitlets.Bool(False).tag(sync=True)
    pings = traitlets.Int(0).tag(sync=True)

def on_ping(widget, content, buffers):  # the kernel got it: a state change and a reply
    widget.pings += 1
    widget.send({{"pong": content.get("ping")}})

probe = Probe(label="{label}", fallback={fallback})
probe.on_msg(on_ping)

if {guard}:  # ipykernel 7.4: never route this comm's messages to a subshell that is gone
    route = probe.comm._reply_subshell_for
    subshells = probe.comm.kernel.shell_channel_thread.manager

    def guarded(data, default):
        subshell = route(data, default)
        return subshell if subshell is None or subshell in subshells.list_subshell() else default

    probe.comm._reply_subshell_for = guarded

def stream(widget, sleep=time.sleep):  # a running turn: updates from a kernel thread
    try:
        while True:
            widget.count += 1
            sleep(0.2)
    except Exception:  # a kernel shutting down tears the interpreter down under us
        return

threading.Thread(target=stream, args=(probe,), daemon=True).start()
probe"""


@pytest.fixture(scope="module")
def server(server: Lab) -> Lab:
    """The frontend's server, with the probe widget's module beside the notebooks."""
    shutil.copyfile(PROBE_JS, server.root / PROBE_JS.name)
    return server


@contextlib.contextmanager
def widget_state_saved(server: Lab, on: bool) -> Iterator[None]:
    """jupyterlab_widgets' "Save Widget State Automatically" (read at page load)."""
    path = server.root.parent / "settings" / WIDGET_SETTINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"saveState": on}))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def start_probe(
    page: Page,
    server: Lab,
    frontend: str,
    label: str,
    *,
    fallback: bool = False,
    guard: bool = False,
) -> str:
    name = f"lifecycle-{label}-{frontend}.ipynb"
    cell = PROBE_CELL.format(label=label, fallback=fallback, guard=guard)
    write_notebook(server.root, name, cell)
    open_notebook(page, server, frontend, name)
    run_all(page)
    # Streaming: the counter has moved in the view.
    page.wait_for_function(
        "(label) => (window.__lifecycleCount?.[label]?.() ?? 0) > 3", arg=label, timeout=60_000
    )
    return name


def log(page: Page, label: str) -> list[str]:
    lines: list[str] = page.evaluate("(label) => window.__lifecycle?.[label] ?? []", label)
    return lines


def events(lines: list[str]) -> list[str]:
    """The lines without their timestamps."""
    return [line.split(" ", 1)[1] for line in lines]


def send(page: Page, label: str) -> str:
    result: str = page.evaluate("(label) => window.__lifecycleSend[label]()", label)
    return result


def count(page: Page, label: str) -> int | None:
    value: int | None = page.evaluate("(label) => window.__lifecycleCount[label]()", label)
    return value


def keep(name: str, data: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"lifecycle-{name}.json").write_text(json.dumps(data, indent=2) + "\n")


def kernel_status(page: Page, name: str) -> str:
    status: str = page.evaluate(
        """(path) => {
          const p = window.__cxnPage.panels(path)[0];
          const k = p && p.sessionContext.session && p.sessionContext.session.kernel;
          return k ? k.status : 'none';
        }""",
        name,
    )
    return status


def settle(page: Page, label: str, quiet_s: float = 1.5, limit_s: float = 20) -> list[str]:
    """The log once nothing new was logged for ``quiet_s`` (the view polls every 250 ms)."""
    deadline = time.monotonic() + limit_s
    lines = log(page, label)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        page.wait_for_timeout(250)
        now = log(page, label)
        if now != lines:
            lines, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            break
    return lines


def probe_view(page: Page, label: str) -> Any:
    return page.locator(".jp-OutputArea-output").filter(has_text=f"probe {label}")


def kernel_id(page: Page, name: str) -> str:
    kid: str = page.evaluate(
        "(path) => window.__cxnPage.panel(path).sessionContext.session.kernel.id", name
    )
    return kid


def shut_down_from_ui(page: Page, name: str) -> None:
    kernel_menu(page, "Shut Down Kernel")
    page.wait_for_function(
        "(path) => !window.__cxnPage.panel(path).sessionContext.session", arg=name
    )


def kill_kernel(server: Lab, page: Page, name: str) -> None:
    """SIGKILL the notebook's kernel process (the server restarts it on its own)."""
    kid = kernel_id(page, name)
    procs = [p for p in server.remember_descendants() if any(kid in a for a in cmdline(p))]
    assert len(procs) == 1, procs
    procs[0].send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)


def widget_output(saved: Any) -> tuple[str, dict[str, Any]]:
    """The probe's model id in a saved notebook, and the saved widget state by model id."""
    (output,) = saved.cells[0].outputs
    model_id = output.data["application/vnd.jupyter.widget-view+json"]["model_id"]
    state = saved.metadata.get("widgets", {}).get(WIDGET_STATE_MIME, {}).get("state", {})
    return model_id, state


def saved(server: Lab, page: Page, name: str) -> Any:
    save(page, name)
    return nbformat.read(server.root / name, as_version=4)


def no_pong(page: Page, label: str) -> bool:
    """``model.send`` did not throw, and no answer came back within two seconds."""
    assert send(page, label).startswith("ok")
    page.wait_for_timeout(2000)
    return not any("pong" in line for line in log(page, label))


LOST = ("comm:close", "destroy", "aborted", "cleanup called")


# ----------------------------------------------------------------------------- (a) restart


@pytest.mark.parametrize("state_saved", [False, True], ids=["state-off", "state-on"])
def test_kernel_restart_from_the_ui(
    server: Lab,
    frontend: str,
    nb_page: Page,
    shot: Callable[[Page, str], Path],
    state_saved: bool,
) -> None:
    """comm_live_update (comm_live false, comm disposed); the view stays, frozen, and is not
    marked disconnected (anywidget's render removes ipywidgets' own listener); send throws.
    Saved after that, the widget state is left out (only live models are saved), so a reload
    shows "model not found" whatever the setting."""
    page = nb_page
    label = f"restart-{state_saved}"
    with widget_state_saved(server, state_saved):
        name = start_probe(page, server, frontend, label)
        assert send(page, label).startswith("ok")
        restart_from_ui(page, name)
        settle(page, label)
        frozen = count(page, label)
        assert send(page, label).startswith("threw: Cannot send")
        lines = settle(page, label)
        keep(f"restart-{frontend}-{'state-on' if state_saved else 'state-off'}", lines)
        seen = events(lines)
        assert (
            "model event comm_live_update: comm_live=false comm disposed; el attached"
        ) in seen, seen
        assert "kernel status restarting" in seen, seen
        assert not [e for e in seen if e.startswith(LOST)], seen
        assert count(page, label) == frozen  # nothing reaches the view any more
        view = probe_view(page, label)
        expect(view).to_be_visible()
        view.scroll_into_view_if_needed()
        shot(page, "probe-log-after-restart")

        model_id, state = widget_output(saved(server, page, name))
        assert model_id not in state
        reload(page, name)
        expect(page.locator(".jp-OutputArea-output")).to_have_text(
            "Error displaying widget: model not found"
        )
        shot(page, "reloaded")


# ----------------------------------------------------------------------------- (b) killed


def test_kernel_killed(server: Lab, frontend: str, nb_page: Page) -> None:
    """The server restarts a killed kernel: the view sees the same as for a restart."""
    page = nb_page
    label = "killed"
    name = start_probe(page, server, frontend, label)
    kill_kernel(server, page, name)
    page.wait_for_function(
        "(label) => window.__lifecycle[label].some((l) => l.includes('comm_live_update'))",
        arg=label,
        timeout=RESTART_MS,
    )
    wait_ready(page, name)
    settle(page, label)
    assert send(page, label).startswith("threw: Cannot send")
    lines = settle(page, label)
    keep(f"killed-{frontend}", lines)
    seen = events(lines)
    assert "kernel status autorestarting" in seen, seen
    assert ("model event comm_live_update: comm_live=false comm disposed; el attached") in seen, (
        seen
    )
    assert not [e for e in seen if e.startswith(LOST)], seen


# ----------------------------------------------------------------------------- (c) shut down


@pytest.mark.parametrize("state_saved", [False, True], ids=["state-off", "state-on"])
def test_kernel_shut_down_from_the_ui(
    server: Lab,
    frontend: str,
    nb_page: Page,
    shot: Callable[[Page, str], Path],
    state_saved: bool,
) -> None:
    """No model event at all: comm_live stays true; the kernel connection is disposed and
    the manager's kernel becomes null; send throws. Saved with widget state, the model is
    kept and a reload renders the view from it, without a comm."""
    page = nb_page
    label = f"shutdown-{state_saved}"
    with widget_state_saved(server, state_saved):
        name = start_probe(page, server, frontend, label)
        shut_down_from_ui(page, name)
        settle(page, label)
        assert send(page, label).startswith("threw: Cannot send")
        lines = settle(page, label)
        keep(f"shutdown-{frontend}-{'state-on' if state_saved else 'state-off'}", lines)
        seen = events(lines)
        assert "kernel connection disposed" in seen, seen
        assert (
            "poll: kernel object changed; kernel null; comm_live=true comm disposed; el attached"
        ) in seen, seen
        assert not [e for e in seen if e.startswith("model event")], seen
        assert not [e for e in seen if e.startswith(LOST)], seen
        expect(probe_view(page, label)).to_be_visible()

        model_id, state = widget_output(saved(server, page, name))
        assert (model_id in state) is state_saved
        reload(page, name)
        if not state_saved:
            expect(page.locator(".jp-OutputArea-output")).to_have_text(
                "Error displaying widget: model not found"
            )
            return
        page.wait_for_function("(label) => window.__lifecycle?.[label]?.length", arg=label)
        first = events(log(page, label))[0]
        assert first.startswith("render: comm_live=false no comm;"), first
        assert first.endswith(".jupyter-widgets-disconnected"), first
        assert no_pong(page, label)  # send is a silent no-op without a comm
        keep(f"shutdown-{frontend}-state-on-reloaded", log(page, label))
        shot(page, "rendered-from-saved-state")


# ----------------------------------------------------------------------------- (d) reload


def test_page_reload_while_the_kernel_runs(server: Lab, frontend: str, nb_page: Page) -> None:
    """The manager re-creates the model from the kernel: a fresh, live view that the kernel
    keeps updating."""
    page = nb_page
    label = "reload"
    name = start_probe(page, server, frontend, label)
    save(page, name)
    reload(page, name)
    try:
        page.wait_for_function(
            "(label) => (window.__lifecycleCount?.[label]?.() ?? 0) > 0", arg=label, timeout=30_000
        )
        before = count(page, label)
        page.wait_for_function(
            "([label, n]) => window.__lifecycleCount[label]() > n", arg=[label, before]
        )
    finally:
        keep(f"reload-{frontend}", log(page, label))
    first = events(log(page, label))[0]
    assert first.startswith("render: comm_live=true comm open;"), first


@contextlib.contextmanager
def comms_over_subshells(server: Lab, value: str) -> Iterator[None]:
    """JupyterLab's "Kernel Comms over subshells" setting (read at page load)."""
    path = server.root.parent / "settings" / KERNEL_SETTINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"commsOverSubshells": value}))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("remedy", ["comms-on-main-shell", "kernel-side-guard"])
def test_a_reloaded_view_reaches_the_kernel_with_a_remedy(
    server: Lab, frontend: str, nb_page: Page, remedy: str
) -> None:
    """After a page reload ``model.send`` reaches the kernel every time, given either remedy
    for ipykernel 7.4's reply-subshell routing: JupyterLab's comms sent on the main shell, or
    a kernel-side guard on the widget's comm. (Without one, about one reload in three leaves
    the comm's messages routed to a subshell the kernel no longer has: they are dropped, with
    "Unknown subshell_id" in the kernel's log; see docs/labextension.md.)"""
    if remedy == "comms-on-main-shell" and frontend == "notebook7":
        pytest.skip(
            "Notebook 7.6.5 does not apply this setting to a notebook's kernel connection "
            "(measured: it stays perCommTarget), so it is no remedy there"
        )
    page = nb_page
    label = f"reload-{remedy}"
    setting = "disabled" if remedy == "comms-on-main-shell" else "perCommTarget"
    with comms_over_subshells(server, setting):
        name = start_probe(page, server, frontend, label, guard=remedy == "kernel-side-guard")
        save(page, name)
        for attempt in range(3):
            reload(page, name)
            page.wait_for_function(
                "(label) => (window.__lifecycleCount?.[label]?.() ?? 0) > 0",
                arg=label,
                timeout=30_000,
            )
            assert send(page, label).startswith("ok")
            try:
                page.wait_for_function(
                    "(label) => window.__lifecycle[label].some((l) => l.includes('pong'))",
                    arg=label,
                    timeout=10_000,
                )
            finally:
                keep(f"{label}-{frontend}-{attempt}", log(page, label))
            assert f"pings {attempt + 1}" in events(log(page, label))


# ----------------------------------------------------------------------------- the recipe


@pytest.mark.parametrize("how", ["restart", "shutdown", "reopened"])
def test_a_widget_that_follows_the_recipe_leaves_a_saved_fallback(
    server: Lab, frontend: str, nb_page: Page, shot: Callable[[Page, str], Path], how: str
) -> None:
    """On comm_live_update / kernel disposed / a view rendered without a comm, the probe asks
    the extension to replace its output with its log: saved, and shown after a reload instead
    of "model not found". "reopened": the page was closed mid-turn with widget state saved,
    the kernel went away meanwhile, and the notebook is opened again."""
    page = nb_page
    label = f"fallback-{how}"
    with widget_state_saved(server, how == "reopened"):
        name = start_probe(page, server, frontend, label, fallback=True)
        if how == "restart":
            restart_from_ui(page, name)
            why = "kernel restarted"
        elif how == "shutdown":
            shut_down_from_ui(page, name)
            why = "kernel shut down"
        else:
            save(page, name)
            page.goto("about:blank")
            for session in server.api("GET", "/api/sessions"):
                if session["path"] == name:
                    server.api("DELETE", f"/api/sessions/{session['id']}")
            open_notebook(page, server, frontend, name)
            why = "not connected to a kernel"
        fallback = page.locator(".probe-fallback")
        expect(fallback).to_contain_text(f"probe {label}: {why}")
        assert "replace-output handled=true error=undefined" in events(log(page, label))
        outputs = model(page, name)["cells"][0]["outputs"]
        assert [o["output_type"] for o in outputs] == ["display_data"]
        assert outputs[0]["metadata"] == {"probe": {"label": label, "why": why}}
        shot(page, "replaced")

        notebook = saved(server, page, name)
        (output,) = notebook.cells[0].outputs
        assert output.data["text/plain"].startswith(f"probe {label}: {why}\n")
        reload(page, name)
        expect(page.locator(".probe-fallback")).to_contain_text(f"probe {label}: {why}")
        expect(page.get_by_text("Error displaying widget")).to_have_count(0)
        shot(page, "reloaded")
