"""The per-turn widget and its single Python-side writer.

The durable state lives in two synced traits, ``header`` and ``blocks``.
Changes travel as small custom messages::

    kernel → view  {"type": "append", "block": id, "offset": n, "text": delta}
    kernel → view  {"type": "reset", "block": id, "text": tail, "base": b, "hidden_lines": h}
    kernel → view  {"type": "upsert", "block": {...}, "index": i}   (a block appeared / changed)
    kernel → view  {"type": "remove", "block": id}
    kernel → view  {"type": "snapshot", "blocks": [...]}             (the answer to a sync)
    view → kernel  {"type": "sync"}      (rendered while the turn runs, or saw a gap)
    view → kernel  {"type": "decision", "request": request_id, "decision": "accept" | ...}
    view → kernel  {"type": "stop"}

Offsets and lengths are UTF-16 code units (JavaScript's ``string.length``).
``base`` is where the shown text starts when the head of a long command
output was dropped (the view's length is ``base + len(text)``).

The ``blocks`` trait is rewritten when the upserts since its last write add
up to its own size, and always once the turn has ended: a turn with many
commands costs bytes linear in its output instead of resending every block on
every change.  Messages sent before a view renders are lost, so a view that
renders while the turn runs asks for a snapshot.

Threads: :class:`TurnView` guards its model with a lock, so ``apply`` /
``set_status`` / ``decide`` may be called from any thread, but only
``flush`` (and ``finish``, which flushes) sends to the frontend; call them
from the one driver thread.  Button clicks arrive on the kernel's shell
thread: the handler only answers a sync request itself and otherwise calls
``decide`` / ``on_stop``, leaving the widget state to the next flush.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anywidget
import orjson
import traitlets

from ..approvals import answer_for
from ..messages import Notification, ServerRequest
from ..results import TurnResult
from .render import (
    DECISIONS,
    STATUSES,
    TERMINAL_STATUSES,
    TranscriptModel,
    error_code,
    render_static,
)

__all__ = ["TurnView", "TurnWidget"]

log = logging.getLogger("codex_notebook")

_STATIC = Path(__file__).parent / "static"


class TurnWidget(anywidget.AnyWidget):
    """The view of one turn.  Holds no logic: :class:`TurnView` writes its traits.

    ``header``: ``{"thread", "status", "detail", "started_at", "ended_at", "clock",
    "tokens", "model", "demo", "notice", "can_stop", "stopping", "pending"}``
    (times are epoch milliseconds; ``clock`` is the kernel's time when the
    header was sent, so the view can correct for clock skew).
    ``blocks``: one dict per block, see ``render.Block.trait``.
    """

    _esm = (_STATIC / "turn_widget.js").read_text(encoding="utf-8")
    _css = (_STATIC / "turn_widget.css").read_text(encoding="utf-8")
    header = traitlets.Dict().tag(sync=True)
    blocks: traitlets.List[Any] = traitlets.List().tag(sync=True)

    def __repr__(self) -> str:  # the text/plain of the live display
        header = self.header
        return f"<codex turn on thread {header.get('thread')!r}: {header.get('status')}>"


def _size(value: Any) -> int:
    return len(orjson.dumps(value))


class TurnView:
    """The single writer of a :class:`TurnWidget`: folds events, sends changes.

    Call :meth:`flush` from the driver thread whenever events were applied or
    the status changed, at most every ~50–100 ms while text streams (the
    browser is the bottleneck), and once more at the end (``finish`` does).
    """

    def __init__(
        self,
        *,
        thread_name: str,
        prompt: str,
        demo: bool = False,
        model: str | None = None,
        on_stop: Callable[[], None] | None = None,
        on_decision: Callable[[ServerRequest, str], None] | None = None,
        clock: Callable[[], float] = time.time,
        answer_language: str | None = None,
    ) -> None:
        self.thread_name = thread_name
        self.prompt = prompt
        self._demo = demo
        self._model_name = model
        self._on_stop = on_stop
        self._on_decision = on_decision
        self._clock = clock
        self._lock = threading.RLock()  # the model and header state
        self._send_lock = threading.Lock()  # one sender at a time: flush vs. a sync reply
        self._model = TranscriptModel()
        self._model.answer_language = answer_language  # "json" for structured output
        self._status = "starting"
        self._detail = ""
        self._notice = ""
        self._started_at: int | None = self._now()
        self._ended_at: int | None = None
        self._stopping = False
        self._sent_header: dict[str, Any] = {}
        self._view_list: list[dict[str, Any]] = []  # the blocks as views have them
        self._trait_blocks: list[dict[str, Any]] = self._view_list  # the trait as last written
        self._snapshot_size = 0  # bytes of that trait
        self._since_snapshot = 0  # bytes of upserts / removes since
        self.bytes_sent = 0
        self.messages_sent = 0
        self.flushes = 0
        header = self._header()
        self._sent_header = dict(header)
        self.widget = TurnWidget(header={**header, "clock": self._now()}, blocks=[])
        self.widget.on_msg(self._on_custom_msg)

    # -- state changes (any thread)

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def set_status(self, status: str, detail: str = "") -> None:
        """One of ``STATUSES``; ``detail`` e.g. ``"queued behind cell [3]"``."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        with self._lock:
            self._set_status(status, detail)

    def _set_status(self, status: str, detail: str = "") -> None:
        self._status = status
        self._detail = detail
        if status == "queued":
            self._started_at = None
        elif self._started_at is None:
            self._started_at = self._now()
        if status in TERMINAL_STATUSES:
            if self._ended_at is None:
                self._ended_at = self._now()
        else:
            self._ended_at = None

    def set_notice(self, text: str) -> None:
        """A line under the header, e.g. "resumed thread failed; started a new one"."""
        with self._lock:
            self._notice = text

    def apply(self, events: Sequence[Notification]) -> None:
        """Fold events (notifications and server requests of this turn, in order)."""
        if not events:
            return
        with self._lock:
            for event in events:
                self._model.apply(event)
            if self._model.status in TERMINAL_STATUSES:
                if self._status not in TERMINAL_STATUSES:
                    self._set_status(self._model.status, "")
            elif self._status in ("queued", "starting"):
                self._set_status("running")

    def decide(self, request_id: Any, decision: str) -> None:
        """Record a person's answer to an approval (from a click or from code).

        Calls ``on_decision(request, decision)`` once; without ``on_decision``
        the request is answered here.  Later calls, unknown ids and requests
        already answered or moot are ignored.
        """
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r}; expected one of {DECISIONS}")
        with self._lock:
            self._model.refresh_requests()
            block = self._model.record_decision(request_id, decision)
            request = block.request if block is not None else None
        if request is None:
            return
        if self._on_decision is not None:
            self._on_decision(request, decision)
        else:
            request.respond(answer_for(request.method, request.params_dict, decision))

    def finish(self, result: TurnResult[Any] | None, error: str | None = None) -> dict[str, str]:
        """The turn is over: final blocks and status, one last flush; returns
        the static mime bundle (text/html, text/markdown, text/plain).

        The status comes from ``result``, else from the turn's own
        ``turn/completed``, else from an ending status already set with
        :meth:`set_status` (then ``error`` is shown as a plain note, e.g.
        "Stopped before it started."), else it is ``"error"`` with ``error``
        shown as an error, or ``"interrupted"`` without one.
        """
        with self._lock:
            model = self._model
            model.refresh_requests()
            status = model.status
            if result is not None:
                status = result.status
                if result.usage is not None:
                    model.usage = result.usage
                if result.error is not None:
                    model.add_error(result.error.message, error_code(result.error.codex_error_info))
            if status is None and self._status in TERMINAL_STATUSES:
                status = self._status
            if error is not None:
                if status in ("completed", "interrupted"):
                    model.add_notice(error)
                else:
                    model.add_error(error)
                    status = status or "error"
            model.finalize()
            self._stopping = False
            final = status if status in TERMINAL_STATUSES else "interrupted"
            self._set_status(final, self._detail if final == self._status else "")
        self.flush()
        return self.static_bundle()

    # -- reading

    @property
    def text(self) -> str:
        """The agent's last message so far (like ``TurnResult.text``)."""
        with self._lock:
            return self._model.text

    @property
    def status(self) -> str:
        with self._lock:
            return self._effective_status()

    def static_bundle(self) -> dict[str, str]:
        with self._lock:
            return render_static(self._model, self._header())

    def _effective_status(self) -> str:
        if self._status not in TERMINAL_STATUSES and self._model.pending_approvals:
            return "waiting for approval"
        return self._status

    def _header(self) -> dict[str, Any]:
        usage = self._model.usage
        tokens = None
        if usage is not None:
            tokens = {
                "total": usage.total_tokens,
                "input": usage.input_tokens,
                "cached": usage.cached_input_tokens,
                "output": usage.output_tokens,
                "reasoning": usage.reasoning_output_tokens,
            }
        status = self._effective_status()
        return {
            "thread": self.thread_name,
            "status": status,
            "detail": self._detail,
            "started_at": self._started_at,
            "ended_at": self._ended_at,
            "tokens": tokens,
            "model": self._model.rerouted_to or self._model_name,
            "demo": self._demo,
            "notice": self._notice,
            "can_stop": self._on_stop is not None and status not in TERMINAL_STATUSES,
            "stopping": self._stopping and status not in TERMINAL_STATUSES,
            "pending": len(self._model.pending_approvals),
        }

    # -- sending (the driver thread)

    def flush(self) -> int:
        """Send what changed since the last flush; returns the bytes sent (JSON).

        Streamed text goes as ``append`` messages carrying only the new text
        (one ``reset`` when a capped command output outran the cap).  A block
        that appeared or changed goes as one ``upsert`` (``remove`` when it
        disappeared); the ``blocks`` trait is rewritten instead once the
        upserts since its last write add up to its size, and always when the
        turn has ended, so it costs at most about as much as the upserts did.
        The ``header`` trait is assigned only when it changed.
        """
        with self._send_lock:
            with self._lock:
                model = self._model
                model.refresh_requests()
                ended = self._status in TERMINAL_STATUSES
                trait: list[dict[str, Any]] | None = None
                ops: list[dict[str, Any]] = []
                if model.changed or (ended and self._trait_blocks is not self._view_list):
                    model.changed = False
                    current = self._publish_blocks()
                    ops = self._block_ops(current)
                    ops_size = sum(_size(op) for op in ops)
                    durable = ended and current != self._trait_blocks  # the final state
                    amortized = bool(ops) and self._since_snapshot + ops_size >= self._snapshot_size
                    if durable or amortized:
                        trait, ops = current, []
                    else:
                        self._since_snapshot += ops_size
                    self._view_list = current
                    if trait is not None:
                        self._trait_blocks = current
                messages = ops + self._stream_messages()
                header: dict[str, Any] | None = self._header()
                if header == self._sent_header:
                    header = None
                else:
                    self._sent_header = dict(header)  # type: ignore[arg-type]
            sent = 0
            count = 0
            if header is not None:
                header["clock"] = self._now()
                self.widget.header = header
                sent += _size(header)
                count += 1
            if trait is not None:
                self.widget.blocks = trait
                size = _size(trait)
                self._snapshot_size = size
                self._since_snapshot = 0
                sent += size
                count += 1
            for message in messages:
                self.widget.send(message)
                sent += _size(message)
                count += 1
            self.flushes += 1
            self.bytes_sent += sent
            self.messages_sent += count
            return sent

    def _publish_blocks(self) -> list[dict[str, Any]]:
        """Call with the lock held: every block's JSON form, as views will now have it."""
        current = [block.trait() for block in self._model.blocks]
        for block in self._model.streaming():  # the dicts carry their text so far
            stream = block.stream
            if stream is not None:
                stream.mark_flushed()
        return current

    def _block_ops(self, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``remove`` / ``upsert`` messages turning what views have into ``current``.

        Mirrors the view: removals first, then each block placed at its index.
        """
        ids = {block["id"] for block in current}
        have = {block["id"]: block for block in self._view_list}
        order = [block_id for block_id in have if block_id in ids]
        ops: list[dict[str, Any]] = [
            {"type": "remove", "block": block_id} for block_id in have if block_id not in ids
        ]
        for index, block in enumerate(current):
            block_id = block["id"]
            if index < len(order) and order[index] == block_id and have[block_id] == block:
                continue
            if block_id in order:
                order.remove(block_id)
            order.insert(index, block_id)
            ops.append({"type": "upsert", "block": block, "index": index})
        return ops

    def _stream_messages(self) -> list[dict[str, Any]]:
        """Call with the lock held: ``append`` (or ``reset``) for text streamed since the flush."""
        messages: list[dict[str, Any]] = []
        for block in self._model.streaming():
            stream = block.stream
            if stream is None:
                continue
            if stream.overflowed:
                text, base, hidden = stream.shown()
                stream.mark_flushed()
                messages.append(
                    {
                        "type": "reset",
                        "block": block.id,
                        "text": text,
                        "base": base,
                        "hidden_lines": hidden,
                    }
                )
                continue
            pending = stream.take_pending()
            if pending is not None:
                offset, text = pending
                messages.append(
                    {"type": "append", "block": block.id, "offset": offset, "text": text}
                )
        return messages

    def _reply_sync(self) -> None:
        """Shell thread: a view rendered late or saw a gap; send it everything as it is now."""
        with self._send_lock:
            with self._lock:
                current = self._publish_blocks()
                self._view_list = current
                message = {"type": "snapshot", "blocks": current}
            self.widget.send(message)
            self.bytes_sent += _size(message)
            self.messages_sent += 1

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """Shell thread: a view sent sync / decision / stop."""
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        try:
            if kind == "sync":
                self._reply_sync()
            elif kind == "decision":
                decision = content.get("decision")
                if isinstance(decision, str) and decision in DECISIONS:
                    self.decide(content.get("request"), decision)
            elif kind == "stop":
                with self._lock:
                    if self._status in TERMINAL_STATUSES:
                        return
                    self._stopping = True
                if self._on_stop is not None:
                    self._on_stop()
        except Exception:  # a callback's bug must not break the comm handler
            log.exception("codex_notebook: handling a %r message from the turn widget failed", kind)
