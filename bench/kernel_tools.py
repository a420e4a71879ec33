"""Kernel tools: answer size and time for a big frame; main-thread round trips; blocking waits.

1. ``inspect`` on a 1,000,000-row DataFrame (in-process, and through the main-thread queue in a
   real kernel): time and answer size (bounded).
2. Main-thread call round trip from a worker thread on an idle ipykernel (p50/p95/p99), and while
   a cell blocks in ``blocking_wait`` (the wait drains the queue).
3. Blocking waits on ipykernel 7.4: ours vs ``jupyter-ui-poll`` — is a widget click handled while
   the cell waits, and how fast; CPU while idle-waiting; what a kernel interrupt does.

    python bench/kernel_tools.py [--calls 500] [--clicks 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from _common import machine

from tests.kernel.conftest import KernelHarness


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def kernel() -> KernelHarness:
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    return KernelHarness(Path(tempfile.mkdtemp(prefix="codex-bench-tools-")), env)


def run(h: KernelHarness, code: str, timeout: float = 120) -> str:
    msg_id, reply = h.execute(code, timeout)
    if reply["status"] != "ok":
        raise RuntimeError(f"{code!r} failed: {h.text(msg_id)}")
    return h.text(msg_id)


def wait_for_output(h: KernelHarness, msg_id: str, needle: str) -> None:
    h.wait_for(lambda: needle in h.text(msg_id), 60, needle)


def reply_of(h: KernelHarness, msg_id: str, timeout: float = 60) -> dict[str, Any]:
    while True:
        reply = h.kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            h.wait_for(lambda: h._idle(msg_id), timeout, "idle")
            return dict(reply["content"])


# --- 1. a big frame ---------------------------------------------------------------------------


def frame_in_process() -> None:
    import numpy as np
    import pandas as pd

    from codex_notebook.notebook.tools.describe import describe, list_variables

    n = 1_000_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "id": np.arange(n),
            "price": rng.normal(100, 10, n),
            "city": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"], n),
            "when": pd.date_range("2020-01-01", periods=n, freq="min"),
            "qty": rng.integers(0, 50, n),
        }
    )
    times, size = [], 0
    for _ in range(5):
        started = time.perf_counter()
        answer = describe("df", df, budget=10)
        times.append(time.perf_counter() - started)
        size = len(answer.text)
    started = time.perf_counter()
    listing = list_variables([("df", df), ("n", n)])
    listing_ms = (time.perf_counter() - started) * 1000
    print(
        f"  inspect df (1,000,000 rows x 5 columns, {df.memory_usage(deep=False).sum() / 2**20:.0f}"
        f" MiB): median {statistics.median(times) * 1000:.0f} ms (runs: "
        + ", ".join(f"{t * 1000:.0f}" for t in times)
        + f"), answer {size:,} characters (cap 6,000)"
    )
    print(f"  variables with that frame: {listing_ms:.1f} ms, {len(listing.text):,} characters")


def frame_in_kernel(h: KernelHarness) -> None:
    run(
        h,
        "import numpy as np, pandas as pd\n"
        "n = 1_000_000\n"
        "df = pd.DataFrame({'id': np.arange(n), 'price': np.random.default_rng(0).normal(size=n),"
        " 'city': np.random.default_rng(1).choice(['Oslo', 'Lima'], n)})\n"
        "from codex_notebook.notebook.tools.describe import describe\n"
        "def worker():\n"
        "    for _ in range(5):\n"
        "        t = time.perf_counter()\n"
        "        a = q.call(lambda: describe('df', df, budget=10), timeout=30)\n"
        "        res.setdefault('frame', []).append((time.perf_counter() - t, len(a.text)))\n"
        "res.pop('frame', None)\n"
        "threading.Thread(target=worker).start()",
    )
    h.wait_for(lambda: "5" in run(h, "print(len(res.get('frame', [])))"), 120, "5 inspects")
    values = eval(run(h, "print(res['frame'])"))
    times = [t for t, _ in values]
    print(
        f"  inspect df through the queue from a worker, real kernel: median "
        f"{statistics.median(times) * 1000:.0f} ms, answer {values[-1][1]:,} characters"
    )


# --- 2. round trips ---------------------------------------------------------------------------

SETUP = """
import threading, time, os
from codex_notebook.notebook.mainthread import main_queue
q = main_queue()
res = {}
def round_trips(key, n, gap):
    out = []
    for _ in range(n):
        time.sleep(gap)  # let the loop go back to sleep: every call finds the kernel idle
        t = time.perf_counter()
        q.call(lambda: None, timeout=10)
        out.append(time.perf_counter() - t)
    res[key] = out
"""


def round_trips(h: KernelHarness, calls: int) -> None:
    results = {}
    for key, gap in (("idle", 0.02), ("back-to-back", 0.0)):
        run(h, f"threading.Thread(target=round_trips, args=({key!r}, {calls}, {gap})).start()")
        h.wait_for(lambda k=key: "True" in run(h, f"print({k!r} in res)"), 120, key)
        results[key] = eval(run(h, f"print(res[{key!r}])"))
    run(
        h,
        "done = threading.Event()\n"
        f"job = lambda: (round_trips('waiting', {calls}, 0.02), done.set())\n"
        "threading.Thread(target=job).start()\n"
        "q.blocking_wait(done, timeout=120)",
    )
    results["waiting"] = eval(run(h, "print(res['waiting'])"))
    for label, values in (
        ("idle kernel, one call every 20 ms (io_loop callback)", results["idle"]),
        ("idle kernel, calls back to back", results["back-to-back"]),
        ("cell in blocking_wait, one call every 20 ms", results["waiting"]),
    ):
        ms = [v * 1000 for v in values]
        print(
            f"  main-thread call round trip, {label}: p50 {pct(ms, 0.5):.2f} ms, "
            f"p95 {pct(ms, 0.95):.2f} ms, p99 {pct(ms, 0.99):.2f} ms, max {max(ms):.2f} ms "
            f"({len(ms)} calls)"
        )


# --- 3. blocking waits: ours vs jupyter-ui-poll -----------------------------------------------

BUTTON = """
import ipywidgets as W
button = W.Button()
clicked = threading.Event()
button.on_click(lambda _: clicked.set())
print(button.model_id)
"""

OURS = "q.blocking_wait(clicked, timeout={timeout})"
UI_POLL = (
    "from jupyter_ui_poll import ui_events\n"
    "t0 = time.monotonic()\n"
    "with ui_events() as poll:\n"
    "    while not clicked.is_set() and time.monotonic() - t0 < {timeout}:\n"
    "        poll(10)\n"
    "        time.sleep(0.02)"
)


def click_latency(h: KernelHarness, model_id: str, wait_code: str, clicks: int) -> None:
    latencies, handled = [], 0
    for _ in range(clicks):
        run(h, "clicked.clear()")
        cell = str(
            h.kc.execute(
                "print('waiting', flush=True)\n"
                + wait_code.format(timeout=5)
                + "\nprint('during' if clicked.is_set() else 'after')"
            )
        )
        wait_for_output(h, cell, "waiting")
        time.sleep(0.2)
        sent = time.monotonic()
        h.send_custom(model_id, {"event": "click"})
        reply_of(h, cell)
        latencies.append(time.monotonic() - sent)
        handled += "during" in h.text(cell)
    ms = [v * 1000 for v in latencies]
    print(
        f"    click handled during the wait: {handled}/{clicks}; click -> cell done: "
        f"p50 {pct(ms, 0.5):.0f} ms, max {max(ms):.0f} ms"
    )


def idle_cpu(h: KernelHarness, pid: int, wait_code: str, seconds: float = 5.0) -> None:
    process = psutil.Process(pid)
    run(h, "clicked.clear()")
    before = process.cpu_times()
    started = time.monotonic()
    run(h, wait_code.format(timeout=seconds))
    elapsed = time.monotonic() - started
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    print(
        f"    CPU while waiting {elapsed:.1f} s for nothing: {used / elapsed * 100:.1f} % of a core"
    )


def interrupt(h: KernelHarness, wait_code: str, repeats: int = 5) -> None:
    took, outcomes = [], set()
    for _ in range(repeats):
        run(h, "clicked.clear()")
        cell = str(h.kc.execute("print('waiting', flush=True)\n" + wait_code.format(timeout=30)))
        wait_for_output(h, cell, "waiting")
        time.sleep(0.3)
        sent = time.monotonic()
        h.km.interrupt_kernel()
        reply = reply_of(h, cell)
        took.append((time.monotonic() - sent) * 1000)
        outcomes.add(f"{reply['status']} ({reply.get('ename', '-')})")
    alive = run(h, "print(1 + 1)").strip() == "2"
    print(
        f"    kernel interrupt during the wait: cell ended {', '.join(sorted(outcomes))}; "
        f"interrupt -> reply p50 {pct(took, 0.5):.0f} ms, max {max(took):.0f} ms "
        f"({repeats} runs); kernel alive: {alive}"
    )


def waits(h: KernelHarness, clicks: int) -> None:
    import ipykernel
    import jupyter_ui_poll

    model_id = run(h, BUTTON).strip()
    pid = int(run(h, "print(os.getpid())"))
    print(f"  ipykernel {ipykernel.__version__}, jupyter-ui-poll {jupyter_ui_poll.__version__}")
    print("  baseline (time.sleep in a cell):")
    idle_cpu(h, pid, "time.sleep({timeout})")
    for name, code, n in (
        ("codex_notebook blocking_wait", OURS, clicks),
        ("jupyter-ui-poll ui_events loop", UI_POLL, 2),
    ):
        print(f"  {name}:")
        click_latency(h, model_id, code, n)
        idle_cpu(h, pid, code)
        interrupt(h, code)


# --- 4. how to run the agent's code: run_cell vs our own exec ---------------------------------

RUN_WAYS = """
import sys
from codex_notebook.notebook.tools.execute import run_code
ip = get_ipython()
events = []
ip.events.register('post_run_cell', lambda r: events.append(1))
def probe(label, fn):
    for name in ('last_value', 'last_exc'):
        if hasattr(sys, name):
            delattr(sys, name)
    base_out, base_us, base_n, base_events = dict(Out), _, ip.execution_count, len(events)
    value = fn('5678')
    fn('1/0')
    res[label] = dict(
        value=value,
        out_changed=dict(Out) != base_out,
        underscore_changed=_ is not base_us,
        count_changed=ip.execution_count != base_n,
        hooks_fired=len(events) - base_events,
        last_value_set=hasattr(sys, 'last_value'),
    )
"""


def run_ways(h: KernelHarness) -> None:
    run(h, RUN_WAYS)
    run(h, "1234")  # Out[n] = 1234, _ = 1234
    ways = {
        "run_cell(store_history=False)": "lambda c: ip.run_cell(c, store_history=False).result",
        "run_cell(silent=True)": "lambda c: ip.run_cell(c, silent=True).result",
        "run_code (ours)": "lambda c: run_code(ip, c).result",
    }
    for label, fn in ways.items():
        with h._cond:
            h.messages.clear()
        job = f"lambda: q.call(lambda: probe({label!r}, {fn}), timeout=30)"
        run(h, f"threading.Thread(target={job}).start()")
        h.wait_for(lambda lb=label: "True" in run(h, f"print({lb!r} in res)"), 60, label)
        with h._cond:  # outputs the probe published into whichever cell was current
            leaked = sum(
                1
                for m in h.messages
                if m["msg_type"] in ("execute_result", "error", "stream", "display_data")
                and ("5678" in str(m["content"]) or "ZeroDivision" in str(m["content"]))
            )
        facts = eval(run(h, f"print(res[{label!r}])"))
        print(
            f"  {label}: last value {facts['value']!r}; Out changed {facts['out_changed']}, "
            f"_ changed {facts['underscore_changed']}, execution_count changed "
            f"{facts['count_changed']}, post_run_cell fired {facts['hooks_fired']}x, "
            f"sys.last_value set {facts['last_value_set']}, outputs published into a cell {leaked}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--clicks", type=int, default=10)
    args = parser.parse_args()
    print(f"kernel tools: {machine()}")
    frame_in_process()
    h = kernel()
    try:
        run(h, SETUP)
        frame_in_kernel(h)
        round_trips(h, args.calls)
        waits(h, args.clicks)
        run_ways(h)
    finally:
        h.close()


if __name__ == "__main__":
    main()
