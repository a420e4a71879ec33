"""Property-based fuzzing of message interleavings into the router.

For any interleaving of responses, turn notifications (before and after
claims), server requests, global notifications and EOF: nothing hangs, every
event reaches each consumer of its turn exactly once and in order, every
server request is answered or settled, and no per-turn state is left once all
turns completed.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_notebook.errors import TransportClosedError
from codex_notebook.messages import Notification
from codex_notebook.router import Router, TurnCursor


def _line(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def _event(turn: str, kind: str, n: int) -> bytes:
    if kind == "delta":
        params = {"threadId": "th", "turnId": turn, "itemId": "m", "delta": f"{turn}:{n}"}
        return _line({"method": "item/agentMessage/delta", "params": params})
    if kind == "request":
        params = {"threadId": "th", "turnId": turn, "itemId": f"i{n}", "command": "ls"}
        return _line({"id": n, "method": "item/commandExecution/requestApproval", "params": params})
    if kind == "unknown":
        return _line({"method": "x/new", "params": {"turn": {"id": turn}, "n": n}})
    return _line({"method": "turn/completed", "params": {"threadId": "th", "turn": {"id": turn}}})


def _key(event: Notification) -> bytes:
    return orjson.dumps(event.raw)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_interleaving_delivers_everything_exactly_once_in_order(data: st.DataObject) -> None:
    n_turns = data.draw(st.integers(1, 4), label="turns")
    eof = data.draw(st.booleans(), label="eof")
    request_ids = iter(range(1000))
    queues: dict[str, list[tuple[bytes, str]]] = {}
    for t in range(n_turns):
        turn = f"t{t}"
        kinds = data.draw(
            st.lists(st.sampled_from(["delta", "delta", "request", "unknown"]), max_size=6),
            label=f"{turn} events",
        )
        items = []
        for n, kind in enumerate(kinds):
            ident = next(request_ids) if kind == "request" else n
            items.append((_event(turn, kind, ident), kind))
        if not eof or data.draw(st.booleans(), label=f"{turn} completes"):
            items.append((_event(turn, "completed", 0), "completed"))
        queues[turn] = items
    expected = {turn: list(items) for turn, items in queues.items()}
    claim_turn = {turn: data.draw(st.booleans(), label=f"claim {turn}") for turn in queues}
    n_requests = data.draw(st.integers(0, 3), label="client requests")

    sent: list[dict[str, Any]] = []
    router = Router(sent.append, default_handler=lambda r: None)
    futures: list[Future[Any]] = [router.start_request("x/req", {}) for _ in range(n_requests)]
    unanswered = [i + 1 for i in range(n_requests)]
    cursors: dict[str, list[TurnCursor]] = {}
    seen: dict[int, list[Notification]] = {}

    def read(cursor: TurnCursor) -> None:
        try:
            batch = cursor.take()
        except TransportClosedError:
            return
        if batch:
            seen.setdefault(id(cursor), []).extend(batch)

    while (
        any(queues.values())
        or unanswered
        or any(claim_turn[t] and t not in cursors for t in claim_turn)
    ):
        choices = [f"emit {t}" for t, q in queues.items() if q]
        choices += [f"claim {t}" for t in claim_turn if claim_turn[t] and t not in cursors]
        choices += ["respond"] if unanswered else []
        choices += ["global", "read"]
        action = data.draw(st.sampled_from(choices))
        if action.startswith("emit"):
            turn = action.split()[1]
            router.feed(queues[turn].pop(0)[0])
        elif action.startswith("claim"):
            turn = action.split()[1]
            log = router.claim(turn, "th")
            cursors[turn] = [log.cursor(), log.cursor()]  # two consumers per turn
        elif action == "respond":
            request_id = unanswered.pop(data.draw(st.integers(0, len(unanswered) - 1)))
            router.feed(_line({"id": request_id, "result": {"n": request_id}}))
        elif action == "global":
            router.feed(_line({"method": "warning", "params": {"message": "x"}}))
        else:
            for pair in cursors.values():
                read(pair[data.draw(st.integers(0, 1))])
    if eof:
        router.closed(TransportClosedError("eof"))

    for turn, pair in cursors.items():
        for cursor in pair:
            read(cursor)
            got = [_key(e) for e in seen.get(id(cursor), [])]
            want = [raw for raw, _ in expected[turn]]
            assert got == want, (turn, got, want)
            finished = cursor.log.finished
            assert finished or not eof
            if eof and not cursor.log.completed:
                try:
                    cursor.take()
                except TransportClosedError:
                    pass
                else:
                    raise AssertionError("an unfinished turn did not see the EOF")

    for future in futures:
        assert future.done()

    # every server request is answered exactly once, or settled (moot)
    assert router.dispatcher.requests.wait_idle(5)  # every handler has run
    assert router.open_server_requests() == 0
    answers = [m["id"] for m in sent if "result" in m or "error" in m]
    assert len(answers) == len(set(answers))

    if not eof and all(claim_turn.values()):
        assert router.live_turns() == 0
        assert len(router._unclaimed) == 0
