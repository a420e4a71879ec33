"""Client-tool round trip through the real codex binary, without the model's own time.

A scripted Responses-API stub (tests/e2e/responses_stub.py, in this process) answers each
turn's first model request with one ``function_call`` of a client tool, and the second with
text. The trivial handler answers at once. Measured per call, all on this process's clock:

* round trip: the stub finished sending the ``function_call`` -> codex's next model request
  (carrying our answer) arrived at the stub. Everything between the model's two answers:
  codex parsing the model stream, ``item/tool/call`` to us, our routing and worker thread,
  the handler, our answer, codex building and sending the next request. Target (issue 12):
  p95 < 20 ms.
* to the handler: the stub finished sending -> our handler was called.
* back to the model: our handler returned -> the next model request arrived.

    python bench/tool_roundtrip.py [--calls 200] [--codex-bin PATH ...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import REPO, machine

from codex_notebook import Codex, Tool, ToolCall, Toolset
from codex_notebook.transport import resolve_codex_bin
from tests.e2e.responses_stub import ResponsesStub, stub_env


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {p50 * 1000:6.2f} ms, p95 {p95 * 1000:6.2f} ms, max {ordered[-1] * 1000:6.2f} ms"


def measure(binary: str, calls: int) -> None:
    called: list[float] = []
    returned: list[float] = []

    def trivial(call: ToolCall) -> str:
        called.append(time.perf_counter())
        answer = f"{call.arguments.get('name')} = 42"
        returned.append(time.perf_counter())
        return answer

    tools = Toolset(
        "kernel",
        "The user's Python process.",
        [Tool("inspect", "Describe a variable.", {"type": "object"}, trivial)],
    )
    with ResponsesStub() as stub, tempfile.TemporaryDirectory() as tmp:
        env = stub_env(stub, Path(tmp) / "home")
        with Codex(codex_bin=binary, env=env, cwd=tmp, experimental_api=True) as codex:
            thread = codex.thread_start(tools=tools)
            thread.run('CALL:kernel.inspect ARGS:{"name":"warmup"}', timeout=60)
            sent_before, got_before = len(stub.calls_sent_at), len(stub.outputs_received_at)
            called.clear()
            returned.clear()
            durations = []
            for i in range(calls):
                result = thread.run(f'CALL:kernel.inspect ARGS:{{"name":"x{i}"}}', timeout=60)
                assert result.text == f"tool said: x{i} = 42", result.text
                (item,) = result.items_of_type("dynamicToolCall")
                durations.append(item["durationMs"])
            version = codex.server_version
    sent = stub.calls_sent_at[sent_before:]
    got = stub.outputs_received_at[got_before:]
    assert len(sent) == len(got) == len(called) == calls
    round_trip = [b - a for a, b in zip(sent, got, strict=True)]
    to_handler = [b - a for a, b in zip(sent, called, strict=True)]
    back = [b - a for a, b in zip(returned, got, strict=True)]
    print(f"  codex {version}, {calls} calls, one per turn, trivial handler")
    print(f"    round trip, model excluded:  {_percentiles(round_trip)}")
    print(f"    model answer -> our handler: {_percentiles(to_handler)}")
    print(f"    our answer -> next request:  {_percentiles(back)}")
    print(
        f"    codex's item durationMs (call sent -> answer received): "
        f"p50 {statistics.median(durations):.0f} ms, max {max(durations)} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--codex-bin", action="append", help="repeatable; default: pinned + npm")
    args = parser.parse_args()
    binaries = args.codex_bin or [resolve_codex_bin()]
    if not args.codex_bin:
        binaries += sorted(
            str(p)
            for p in (REPO / ".codex-npm").glob(
                "*/node_modules/@openai/codex-linux-*/vendor/*/bin/codex"
            )
        )[-1:]
    print(f"client tool round trip through the real codex binary, {machine()}")
    for binary in binaries:
        measure(binary, args.calls)


if __name__ == "__main__":
    main()
