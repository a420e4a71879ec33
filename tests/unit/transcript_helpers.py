"""Building transcripts from events and recorded app-server turns, for the renderer tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codex_notebook.messages import Notification, ServerRequest
from codex_notebook.notebook.blocks import BlockView, HeaderView
from codex_notebook.notebook.transcript import LocalEvent, Transcript

TURN = "turn-1"
THREAD = "thread-1"
TRANSCRIPTS = (
    Path(__file__).parents[1] / "fixtures" / "transcripts",
    Path("/work/shared/fixtures/transcripts"),
)
HEADER = HeaderView(thread="analysis", status="completed", started_at=0, ended_at=2500)


def note(method: str, **params: Any) -> Notification:
    return Notification(method, {"method": method, "params": params}, TURN, THREAD)


def request(method: str, request_id: Any = 0, **params: Any) -> ServerRequest:
    raw = {"id": request_id, "method": method, "params": params}
    return ServerRequest(method, raw, TURN, THREAD, lambda message: None)


def fold(*events: Notification | LocalEvent, language: str | None = None) -> Transcript:
    transcript = Transcript(answer_language=language)
    transcript.apply_all(events)
    return transcript


def delta(text: str, item: str = "m1") -> Notification:
    """A piece of the agent's answer as it streams."""
    return note("item/agentMessage/delta", itemId=item, delta=text)


def message(text: str, item: str = "m1", **extra: Any) -> Notification:
    return note("item/completed", item={"type": "agentMessage", "id": item, "text": text, **extra})


def replay(name: str) -> Transcript:
    """Fold the first turn of a recorded transcript; server requests get the recorded answer."""
    path = next((d / f"{name}.jsonl" for d in TRANSCRIPTS if (d / f"{name}.jsonl").exists()), None)
    if path is None:
        pytest.skip(f"no transcript {name}")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    answers = {
        r["msg"]["id"]: r["msg"]["result"]
        for r in records
        if r["dir"] == "to_server" and "result" in r["msg"] and "method" not in r["msg"]
    }
    transcript = Transcript()
    turn_id = None
    for record in records:
        msg = record["msg"]
        if record["dir"] != "from_server" or "method" not in msg:
            continue
        params = msg.get("params") or {}
        tid = params.get("turnId") or (params.get("turn") or {}).get("id")
        if tid is None:
            continue
        turn_id = turn_id or tid
        if tid != turn_id:
            continue
        if "id" in msg:
            req = ServerRequest(msg["method"], msg, tid, params.get("threadId"), lambda m: None)
            transcript.apply(req)
            req.respond(answers[msg["id"]])
        else:
            transcript.apply(Notification(msg["method"], msg, tid, params.get("threadId")))
    return transcript


def kinds(transcript: Transcript) -> list[str]:
    return [view.kind for view in transcript.views()]


def only(transcript: Transcript, kind: type[BlockView]) -> Any:
    (view,) = [v for v in transcript.views() if isinstance(v, kind)]
    return view
