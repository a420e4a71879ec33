"""Turning a turn's event log into a :class:`TurnResult`.

Written once and used by the sync client, the asyncio client and the
notebook layer alike: a pure function of the events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import OutputParseError
from .messages import Notification

__all__ = ["TurnError", "TurnResult", "Usage", "collect_result", "fold_result"]

Status = Literal["completed", "interrupted", "failed"]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Usage:
    """Tokens spent by one turn (summed over every model call it made)."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_output_tokens + other.reasoning_output_tokens,
            self.total_tokens + other.total_tokens,
        )

    @classmethod
    def from_wire(cls, data: Any) -> Usage:
        if not isinstance(data, dict):
            return cls()

        def num(key: str) -> int:
            value = data.get(key)
            return value if isinstance(value, int) else 0

        return cls(
            num("inputTokens"),
            num("cachedInputTokens"),
            num("outputTokens"),
            num("reasoningOutputTokens"),
            num("totalTokens"),
        )


@dataclass(frozen=True)
class TurnError:
    """Why a turn failed, as the server put it."""

    message: str
    codex_error_info: Any = None
    additional_details: Any = None

    @classmethod
    def from_wire(cls, data: Any) -> TurnError | None:
        if not isinstance(data, dict):
            return None
        return cls(
            str(data.get("message", "unknown error")),
            data.get("codexErrorInfo"),
            data.get("additionalDetails"),
        )

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, eq=False)
class TurnResult(Generic[M]):
    """The outcome of one turn.

    ``items`` are the completed items as the server sent them (JSON dicts,
    camelCase keys: userMessage, agentMessage, commandExecution, fileChange,
    reasoning, ...).  ``parsed`` validates ``text`` against the pydantic model
    requested with ``output_schema=`` on first access.
    """

    id: str
    thread_id: str | None
    status: Status
    text: str
    items: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage | None = None
    error: TurnError | None = None
    duration_ms: int | None = None
    output_model: type[M] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @cached_property
    def parsed(self) -> M | None:
        """The final message validated into the requested model (None without one)."""
        if self.output_model is None:
            return None
        try:
            return self.output_model.model_validate_json(self.text)
        except ValidationError as exc:
            raise OutputParseError(
                f"turn {self.id} ({self.status}): the final message is not a valid "
                f"{self.output_model.__name__}: {exc.error_count()} error(s)\n{exc}",
                text=self.text,
            ) from exc

    def items_of_type(self, item_type: str) -> list[dict[str, Any]]:
        """Completed items of one type, e.g. ``"commandExecution"``."""
        return [item for item in self.items if item.get("type") == item_type]


def collect_result(
    turn_id: str,
    thread_id: str | None,
    events: Iterable[Notification],
    output_model: type[M] | None = None,
) -> TurnResult[M]:
    """Fold a finished turn's events into its result."""
    pairs = ((event.method, event.params_dict) for event in events)
    return fold_result(turn_id, thread_id, pairs, output_model)


def fold_result(
    turn_id: str,
    thread_id: str | None,
    pairs: Iterable[tuple[str, Any]],
    output_model: type[M] | None = None,
) -> TurnResult[M]:
    """Fold ``(method, params)`` pairs of a finished turn into its result (no wrappers made)."""
    items: list[dict[str, Any]] = []
    usage: Usage | None = None
    error: TurnError | None = None
    status: Status = "failed"
    duration_ms: int | None = None
    deltas: dict[str, list[str]] = {}
    agent_order: list[str] = []  # agent message item ids, in order of first appearance
    agent_done: dict[str, str] = {}
    for method, raw_params in pairs:
        params = raw_params if type(raw_params) is dict else {}
        if method == "item/agentMessage/delta":
            item_id = params.get("itemId")
            if isinstance(item_id, str):
                if item_id not in deltas:
                    deltas[item_id] = []
                    agent_order.append(item_id)
                deltas[item_id].append(str(params.get("delta", "")))
        elif method == "item/completed":
            item = params.get("item")
            if isinstance(item, dict):
                items.append(item)
                if item.get("type") == "agentMessage" and isinstance(item.get("id"), str):
                    if item["id"] not in deltas:
                        deltas[item["id"]] = []
                        agent_order.append(item["id"])
                    agent_done[item["id"]] = str(item.get("text", ""))
        elif method == "thread/tokenUsage/updated":
            token_usage = params.get("tokenUsage")
            if isinstance(token_usage, dict):
                last = Usage.from_wire(token_usage.get("last"))
                usage = last if usage is None else usage + last
        elif method == "error" and not params.get("willRetry"):
            error = TurnError.from_wire(params.get("error")) or error
        elif method == "turn/completed":
            turn = params.get("turn")
            if isinstance(turn, dict):
                raw_status = turn.get("status")
                if raw_status in ("completed", "interrupted", "failed"):
                    status = raw_status
                error = TurnError.from_wire(turn.get("error")) or error
                duration = turn.get("durationMs")
                duration_ms = duration if isinstance(duration, int) else None
    text = ""
    if agent_order:  # the last agent message; its deltas if it never completed (interrupt)
        final_id = agent_order[-1]
        text = agent_done[final_id] if final_id in agent_done else "".join(deltas[final_id])
    return TurnResult(
        id=turn_id,
        thread_id=thread_id,
        status=status,
        text=text,
        items=items,
        usage=usage,
        error=error,
        duration_ms=duration_ms,
        output_model=output_model,
    )
