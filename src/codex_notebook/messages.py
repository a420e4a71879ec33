"""What consumers receive: notifications and server requests.

Both wrap the raw JSON-RPC dict exactly as it came off the wire.  Routing
never needs more than the raw dict, so typed validation into the generated
pydantic models happens lazily, the first time someone reads ``.params``,
on the consumer's thread rather than the reader thread.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from . import protocol
from ._json import check_json
from ._workers import wait_limit

__all__ = ["DEFER", "Deferred", "Notification", "ServerRequest", "SettledReason", "UnknownParams"]

log = logging.getLogger("codex_notebook")

_Kind = Literal["notification", "server_request"]


class UnknownParams(BaseModel):
    """Params of a method this version of the models does not know (or that failed
    validation): every field is kept, readable as attributes and via ``raw``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @property
    def raw(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Notification:
    """One message from the server, as a consumer sees it.

    ``method``, ``turn_id`` and ``thread_id`` are known without validation;
    ``params`` is a typed model built on first access and cached; ``raw`` (the
    whole message) is parsed from the line on first access for turn events.
    ``params_dict`` may be shared with other consumers of the same event:
    treat it as read-only.
    """

    __slots__ = ("_line", "_params", "_params_dict", "_raw", "method", "thread_id", "turn_id")
    _kind: _Kind = "notification"

    def __init__(
        self,
        method: str,
        raw: dict[str, Any],
        turn_id: str | None = None,
        thread_id: str | None = None,
    ) -> None:
        self.method = method
        self._raw: dict[str, Any] | None = raw
        self._line: bytes | str | int | None = None
        self._params_dict: Any = raw.get("params")
        self.turn_id = turn_id
        self.thread_id = thread_id
        self._params: BaseModel | None = None

    @classmethod
    def from_line(
        cls,
        line: bytes | str | int,
        method: str,
        params: Any,
        turn_id: str | None,
        thread_id: str | None,
    ) -> Notification:
        """A notification whose ``raw`` is parsed from ``line`` only if someone reads it."""
        self = cls.__new__(cls)
        self.method = method
        self._raw = None
        self._line = line
        self._params_dict = params
        self.turn_id = turn_id
        self.thread_id = thread_id
        self._params = None
        return self

    @property
    def raw(self) -> dict[str, Any]:
        """The whole JSON-RPC message as received."""
        raw = self._raw
        if raw is None:
            line = self._line
            if isinstance(line, int):  # only the stamp was kept: the message had nothing else
                raw = {"method": self.method, "params": self._params_dict, "emittedAtMs": line}
            else:
                raw = orjson.loads(line or b"{}")
            self._raw = raw
        return raw

    @property
    def params_dict(self) -> dict[str, Any]:
        """The params exactly as received (an empty dict when absent or not an object)."""
        params = self._params_dict
        return params if type(params) is dict else {}

    @property
    def params(self) -> BaseModel:
        """Typed params; ``UnknownParams`` for unknown methods or shapes that do not validate."""
        if self._params is None:
            self._params = _validate(self.method, self.params_dict, self._kind)
        return self._params

    @property
    def known(self) -> bool:
        """Whether the generated models know this method."""
        return protocol.params_model(self.method, self._kind) is not None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} turn={self.turn_id} thread={self.thread_id}>"


def _validate(method: str, params: Mapping[str, Any], kind: _Kind) -> BaseModel:
    model = protocol.params_model(method, kind)
    if model is not None:
        try:
            return model.model_validate(params)
        except ValidationError:
            pass  # a newer server's shape; keep the data rather than fail the consumer
    return UnknownParams.model_validate(dict(params))


class Deferred(enum.Enum):
    """The type of :data:`DEFER` (an enum, so type checkers know the one value)."""

    DEFER = "defer"


#: Returned by a request or tool handler: "I will answer later with ``respond()``".
#:
#: The handler's worker thread is released at once and the request stays
#: pending until it is answered, withdrawn by the server
#: (``serverRequest/resolved``), its turn ends, or the transport dies; each of
#: these settles it, and an answer after that is dropped, never sent.  This is
#: how a request that waits for a person (an approval button) holds no thread.
DEFER: Final = Deferred.DEFER

#: Why a request stopped being pending.
SettledReason = Literal["answered", "withdrawn", "turn ended", "transport closed"]


class ServerRequest(Notification):
    """A request the server sent us (approval, user input, tool call, elicitation, ...).

    It is also an event of its turn's stream, so a widget can render it.  It is
    answered at most once: the handler's return value is sent, or ``respond()``
    / ``reject()`` can be called directly (from any thread).  It is *settled*
    once answered or moot (``settled_reason`` says which); ``wait_settled()``
    returns then, so anything waiting for a button has a way out, and an answer
    attempted after that returns False without sending anything.

    Thread safety: ``_lock`` guards ``response``, ``settled_reason`` and the
    settle hooks; the answer is sent outside it.
    """

    __slots__ = ("_hooks", "_lock", "_send", "_settled", "id", "response", "settled_reason")
    _kind: _Kind = "server_request"

    def __init__(
        self,
        method: str,
        raw: dict[str, Any],
        turn_id: str | None,
        thread_id: str | None,
        send: Callable[[dict[str, Any]], None],
    ) -> None:
        super().__init__(method, raw, turn_id, thread_id)
        self.id: Any = raw.get("id")  # echoed back exactly as received (int stays int)
        self.response: dict[str, Any] | None = None
        self.settled_reason: SettledReason | None = None
        self._send = send
        self._lock = threading.Lock()
        self._settled = threading.Event()
        self._hooks: list[Callable[[ServerRequest], None]] = []

    @property
    def answered(self) -> bool:
        return self.response is not None

    @property
    def settled(self) -> bool:
        return self._settled.is_set()

    def respond(self, result: Any) -> bool:
        """Send ``result`` as the answer.

        Returns False (and sends nothing) if the request was already answered or
        became moot.  Raises :class:`~codex_notebook.errors.InvalidArgumentError`
        if ``result`` is not JSON data; the request then stays unanswered.
        """
        check_json(result, f"the answer to {self.method}")
        return self._answer({"id": self.id, "result": result})

    def reject(self, code: int, message: str) -> bool:
        """Answer with a JSON-RPC error. Returns False if already answered or moot."""
        return self._answer({"id": self.id, "error": {"code": code, "message": str(message)}})

    def _answer(self, message: dict[str, Any]) -> bool:
        with self._lock:
            if self.settled_reason is not None:
                return False
            self.response = message
            self.settled_reason = "answered"
        try:
            self._send(message)
        finally:
            self._finish()
        return True

    def settle(self, reason: SettledReason = "withdrawn") -> bool:
        """Mark the request moot (withdrawn, turn over, transport gone) unless already settled.

        Returns whether this call settled it.  A later answer is dropped.
        """
        with self._lock:
            if self.settled_reason is not None:
                return False
            self.settled_reason = reason
        self._finish()
        return True

    def _finish(self) -> None:
        self._settled.set()
        with self._lock:
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            try:
                hook(self)
            except Exception:  # a hook must not break whoever settled the request
                log.exception("codex_notebook: a settle hook of %s raised", self.method)

    def add_settle_hook(self, hook: Callable[[ServerRequest], None]) -> None:
        """Call ``hook(request)`` once the request is settled (at once if it already is).

        Internal plumbing (the router forgets the request, a tool timeout is
        cancelled); it runs on whichever thread settles the request, possibly the
        reader thread, so it must be quick and must not block.
        """
        with self._lock:
            if self.settled_reason is None:
                self._hooks.append(hook)
                return
        hook(self)

    def wait_settled(self, timeout: float | None = None) -> bool:
        """Block until answered or moot; False on timeout."""
        return self._settled.wait(wait_limit(timeout))
