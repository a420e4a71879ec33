"""The per-turn widget and its single Python-side writer.

The durable state lives in two synced traits, ``header`` and ``blocks`` (the
typed block schema of :mod:`.blocks`, as JSON).  Changes travel as small
custom messages::

    kernel → view  {"type": "append", "block": id, "offset": n, "text": delta}
    kernel → view  {"type": "commit", "block": id, "upto": n, "html": [segment, ...]}
    kernel → view  {"type": "reset", "block": id, "text": tail, "base": b, "hidden_lines": h}
    kernel → view  {"type": "upsert", "block": {...}, "index": i}   (a block appeared / changed)
    kernel → view  {"type": "final", "block": id}                   (only its streaming ended)
    kernel → view  {"type": "remove", "block": id}
    kernel → view  {"type": "snapshot", "blocks": [...]}             (the answer to a sync)
    view → kernel  {"type": "sync"}      (rendered while the turn runs, or saw a gap)
    view → kernel  {"type": "decision", "request": key, "decision": "accept" | ...}
    view → kernel  {"type": "stop"}

Streaming markdown: ``append`` grows a block's unfinished tail (shown as
text); ``commit`` hands over the sanitized HTML of markdown blocks that just
finished and says where the tail now starts, so finished paragraphs, lists
and tables appear rendered as they complete and nothing jumps at the end.
Offsets and lengths are UTF-16 code units (JavaScript's ``string.length``).

The ``blocks`` trait is rewritten when the upserts since its last write add
up to its own size: a turn with many commands costs bytes linear in its
output.  Messages sent before a view renders are lost, so a view that renders
while the turn runs asks for a snapshot.  When the turn ends the output is
replaced by the static rendering and the widget is closed, so there is no
final rewrite of the trait.

Threads: one lock guards the transcript and everything sent (messages are
sent while holding it, so a sync reply and a flush never interleave).
``apply`` and ``flush`` are the driver thread's (the single writer of
widget state); the comm handler runs on the kernel's shell thread and only
answers a sync itself, forwarding decisions and Stop to the callbacks
without touching widget state.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anywidget
import orjson
import traitlets

from ..messages import Notification
from ..results import Usage
from .blocks import DECISIONS, BlockView, HeaderView
from .static_html import render_html
from .static_markdown import render_markdown, render_plain
from .text import u16tail
from .transcript import LocalEvent, Transcript

__all__ = ["TurnView", "TurnWidget"]

log = logging.getLogger("codex_notebook")

_STATIC = Path(__file__).parent / "static"
#: Fields of a block that stream; a change in them alone travels as append/commit.
_STREAM_FIELDS = frozenset({"text", "base", "hidden_lines", "html_segments", "committed", "tail"})


class TurnWidget(anywidget.AnyWidget):
    """The view of one turn.  Holds no logic: :class:`TurnView` writes its traits.

    ``header``: :class:`.blocks.HeaderView` as JSON plus ``clock`` (the kernel's
    time when it was sent, so the view can correct for clock skew).
    ``blocks``: one JSON dict per block of :mod:`.blocks`.
    """

    # strings, not paths: anywidget watches a path for hot reload and keeps every instance alive
    _esm = (_STATIC / "turn_widget.js").read_text(encoding="utf-8")
    _css = (_STATIC / "turn_widget.css").read_text(encoding="utf-8")
    header = traitlets.Dict().tag(sync=True)
    blocks: traitlets.List[Any] = traitlets.List().tag(sync=True)

    def __repr__(self) -> str:  # the text/plain of the live display
        header = self.header
        return (
            f"<codex turn on thread {header.get('thread')!r}, saved while it was "
            f"{header.get('status')}: a live widget; the turn's final rendering replaces it "
            "when the turn ends in a running kernel>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[Any, Any], dict[Any, Any]] | None:
        """The widget view, plus an HTML note for readers that cannot show widgets
        (GitHub, nbviewer, nbconvert) when a notebook is saved mid-turn."""
        shown = super()._repr_mimebundle_(**kwargs)
        if shown is None:
            return None
        data, metadata = shown
        note = html.escape(repr(self)[1:-1])
        return {**data, "text/html": f"<p><em>{note}</em></p>"}, metadata


def route_replies_to_live_subshells(comm: Any) -> None:
    """Keep a reloaded page's clicks from being dropped (ipykernel >= 7.4, JupyterLab 4.6).

    ipykernel routes a comm message from the browser to the subshell the kernel last
    *published* from on that comm; JupyterLab deletes a comm target's subshell when a page
    reload closes its last comm, and a message routed there is dropped with "Unknown
    subshell_id" — measured for ~1 reload in 4 while a turn streams (docs/labextension.md).
    Route to the subshell the message itself names whenever the remembered one is gone.
    The hook is private, hence the ``getattr``s: without it this does nothing.
    """
    route = getattr(comm, "_reply_subshell_for", None)
    thread = getattr(getattr(comm, "kernel", None), "shell_channel_thread", None)
    manager = getattr(thread, "manager", None)
    if route is None or manager is None:
        return

    def guarded(data: Any, default: Any) -> Any:
        subshell = route(data, default)
        if subshell is None or subshell == default:
            return subshell
        try:
            known = manager.list_subshell()
        except Exception:
            return subshell
        return subshell if subshell in known else default

    comm._reply_subshell_for = guarded


def _size(value: Any) -> int:
    return len(orjson.dumps(value))


def _shape(block: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k not in _STREAM_FIELDS and k != "final"}


class TurnView:
    """The single writer of a :class:`TurnWidget`: folds events, sends changes.

    Call :meth:`flush` from the driver thread whenever events were applied or
    the header changed, at most every ~50–100 ms while text streams (the
    browser is the bottleneck), and once more at the end.
    """

    def __init__(
        self,
        header: HeaderView,
        *,
        on_stop: Callable[[], None] | None = None,
        on_decision: Callable[[Any, str], None] | None = None,
        answer_language: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._on_stop = on_stop
        self._on_decision = on_decision
        self._clock = clock
        self._lock = threading.Lock()
        self.transcript = Transcript(answer_language=answer_language)
        self._sent_header: dict[str, Any] = header.to_json()
        self._view_list: list[dict[str, Any]] = []  # the blocks as views have them
        self._snapshot_size = 0  # bytes of the blocks trait as last written
        self._since_snapshot = 0  # bytes of upserts / removes since
        self.bytes_sent = 0  # what went on the comm, for benchmarks (under the lock)
        self.messages_sent = 0
        self.flushes = 0
        self.widget = TurnWidget(header={**self._sent_header, "clock": self._now()}, blocks=[])
        self.widget.on_msg(self._on_custom_msg)
        route_replies_to_live_subshells(self.widget.comm)

    def _now(self) -> int:
        return int(self._clock() * 1000)

    # -- the driver thread

    def apply(self, events: Sequence[Notification | LocalEvent]) -> None:
        """Fold events (notifications, server requests and local events, in order)."""
        if events:
            with self._lock:
                self.transcript.apply_all(events)

    def finish(self, error: str | None = None, *, notice: str | None = None) -> None:
        """The turn is over: every block final, pending approvals expired; an
        error or a plain note shown last."""
        with self._lock:
            transcript = self.transcript
            if notice:
                transcript.add_notice(notice)
            if error:
                transcript.add_error(error)
            transcript.finalize()

    def flush(self, header: HeaderView) -> int:
        """Send what changed since the last flush; returns the bytes sent (JSON).

        Streamed text goes as ``append`` messages carrying only the new text,
        finished markdown as ``commit`` (HTML segments), capped command output
        that outran its cap as one ``reset``.  A block that appeared or changed
        shape goes as one ``upsert`` (``final`` when only its streaming ended,
        ``remove`` when it disappeared); the ``blocks`` trait is rewritten
        instead once the upserts since its last write add up to its size.  The
        ``header`` trait is assigned only when it changed.
        """
        with self._lock:
            transcript = self.transcript
            transcript.refresh_requests()
            transcript.advance()
            trait: list[dict[str, Any]] | None = None
            ops: list[dict[str, Any]] = []
            if transcript.changed:
                transcript.changed = False
                current = [view.to_json() for view in transcript.views()]
                ops = self._block_ops(current)
                ops_size = sum(_size(op) for op in ops)
                if ops and self._since_snapshot + ops_size >= self._snapshot_size:
                    trait, ops = current, []
                    transcript.mark_sent(None)  # the trait carries everything streamed
                else:
                    self._since_snapshot += ops_size
                    transcript.mark_sent(
                        {op["block"]["id"] for op in ops if op["type"] == "upsert"}
                    )
                self._view_list = current
            finals = [op for op in ops if op["type"] == "final"]
            messages = [op for op in ops if op["type"] != "final"]
            messages += self._stream_messages() + finals
            head = header.to_json()
            send_header = head != self._sent_header
            if send_header:
                self._sent_header = head
            sent = count = 0
            if send_header:
                self.widget.header = {**head, "clock": self._now()}
                sent += _size(head)
                count += 1
            if trait is not None:
                self.widget.blocks = trait
                self._snapshot_size = _size(trait)
                self._since_snapshot = 0
                sent += self._snapshot_size
                count += 1
            for message in messages:
                self.widget.send(message)
                sent += _size(message)
                count += 1
            self.flushes += 1
            self.bytes_sent += sent
            self.messages_sent += count
            return sent

    def close(self) -> None:
        """Close the widget's comm (the static rendering replaced it), drop its handlers, and
        close the ``Layout`` widget every DOMWidget owns (ipywidgets leaves it open)."""
        self.widget.on_msg(self._on_custom_msg, remove=True)
        layout = self.widget.layout
        self.widget.close()
        layout.close()

    def _stream_messages(self) -> list[dict[str, Any]]:
        """Lock held: ``append`` / ``reset`` for text streamed since the last flush.

        Markdown that finished travels as a ``commit`` (its HTML replaces the
        text up to ``upto``) carrying the rest of the new text: the part the
        HTML covers is never sent as text.
        """
        commits = {
            block_id: (upto, html) for block_id, upto, html in self.transcript.take_commits()
        }
        messages: list[dict[str, Any]] = []
        for block_id, stream in self.transcript.streams():
            if stream.overflowed:
                text, base, hidden = stream.shown()
                stream.mark_flushed()
                messages.append(
                    {
                        "type": "reset",
                        "block": block_id,
                        "text": text,
                        "base": base,
                        "hidden_lines": hidden,
                    }
                )
                continue
            pending = stream.take_pending()
            commit = commits.pop(block_id, None)
            if commit is not None:
                upto, html = commit
                message = {"type": "commit", "block": block_id, "upto": upto, "html": html}
                if pending is not None:
                    offset, text = pending
                    text = u16tail(text, upto - offset)
                    if text:
                        message.update(offset=max(offset, upto), text=text)
                messages.append(message)
            elif pending is not None:
                offset, text = pending
                messages.append(
                    {"type": "append", "block": block_id, "offset": offset, "text": text}
                )
        for block_id, (upto, html) in commits.items():  # a block that is no longer streaming
            messages.append({"type": "commit", "block": block_id, "upto": upto, "html": html})
        return messages

    def _block_ops(self, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Lock held: messages turning what views have into ``current``.

        Mirrors the view: removals first, then each block placed at its index;
        a block whose shape is unchanged and only stopped streaming gets ``final``.
        A block ``rewritten`` at its end changed shape: it is sent whole, and
        views build it anew (also from a snapshot).
        """
        ids = {block["id"] for block in current}
        have = {block["id"]: block for block in self._view_list}
        order = [block_id for block_id in have if block_id in ids]
        ops: list[dict[str, Any]] = [
            {"type": "remove", "block": block_id} for block_id in have if block_id not in ids
        ]
        for index, block in enumerate(current):
            block_id = block["id"]
            old = have.get(block_id)
            in_place = index < len(order) and order[index] == block_id
            if in_place and old is not None and _shape(old) == _shape(block):
                if block["final"] and not old["final"]:
                    ops.append({"type": "final", "block": block_id})
                continue
            if block_id in order:
                order.remove(block_id)
            order.insert(index, block_id)
            ops.append({"type": "upsert", "block": block, "index": index})
        return ops

    # -- reading (any thread)

    @property
    def text(self) -> str:
        """The agent's last message so far (like ``TurnResult.text``)."""
        with self._lock:
            return self.transcript.text

    @property
    def usage(self) -> Usage | None:
        with self._lock:
            return self.transcript.usage

    @property
    def model(self) -> str | None:
        with self._lock:
            return self.transcript.rerouted_to

    def views(self) -> list[BlockView]:
        with self._lock:
            return self.transcript.views()

    def static_bundle(self, header: HeaderView) -> dict[str, str]:
        """The turn as a self-contained mime bundle: ``text/html`` (inline styles,
        sanitized), ``text/markdown`` (inert under any renderer) and ``text/plain``."""
        with self._lock:
            views = self.transcript.views()
            answer = self.transcript.text
        return {
            "text/html": render_html(header, views),
            "text/markdown": render_markdown(header, views),
            "text/plain": render_plain(header, views, answer),
        }

    # -- the kernel's shell thread

    def _reply_sync(self) -> None:
        """A view rendered late or saw a gap: send it everything as it is now."""
        with self._lock:
            transcript = self.transcript
            transcript.advance()
            current = [view.to_json() for view in transcript.views()]
            transcript.mark_sent(None)  # the snapshot carries everything streamed so far
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
                if decision in DECISIONS and self._on_decision is not None:
                    self._on_decision(content.get("request"), str(decision))
            elif kind == "stop" and self._on_stop is not None:
                self._on_stop()
        except Exception:  # a callback's bug must not break the comm handler
            log.exception("codex_notebook: handling a %r message from the turn widget failed", kind)
