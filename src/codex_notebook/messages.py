"""What consumers receive: notifications and server requests.

Both wrap the raw JSON-RPC dict exactly as it came off the wire.  Routing
never needs more than the raw dict, so typed validation into the generated
pydantic models happens lazily, the first time someone reads ``.params``,
on the consumer's thread rather than the reader thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from . import protocol

__all__ = ["DEFER", "Notification", "ServerRequest", "UnknownParams"]

#: A request handler's answer meaning "I will answer later with request.respond()".
DEFER: Any = object()

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
    ``params`` is a typed model built on first access and cached.
    """

    __slots__ = ("_params", "method", "raw", "thread_id", "turn_id")
    _kind: _Kind = "notification"

    def __init__(
        self,
        method: str,
        raw: dict[str, Any],
        turn_id: str | None = None,
        thread_id: str | None = None,
    ) -> None:
        self.method = method
        self.raw = raw
        self.turn_id = turn_id
        self.thread_id = thread_id
        self._params: BaseModel | None = None

    @property
    def params_dict(self) -> dict[str, Any]:
        """The params exactly as received (an empty dict when absent or not an object)."""
        params = self.raw.get("params")
        return params if isinstance(params, dict) else {}

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


class ServerRequest(Notification):
    """A request the server sent us (approval, user input, elicitation, ...).

    It is also an event of its turn's stream, so a widget can render it.  It
    must be answered exactly once: the handler's return value is sent, or
    ``respond()`` / ``reject()`` can be called directly.  ``wait_settled()``
    returns once it was answered or became moot (turn ended, server resolved
    it, transport died), so a handler waiting for a button has a way out.
    """

    __slots__ = ("_lock", "_send", "_settled", "id", "response")
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
        self._send = send
        self._lock = threading.Lock()
        self._settled = threading.Event()

    @property
    def answered(self) -> bool:
        return self.response is not None

    @property
    def settled(self) -> bool:
        return self._settled.is_set()

    def respond(self, result: Any) -> bool:
        """Send ``result`` as the answer. Returns False if it was already answered."""
        return self._answer({"id": self.id, "result": result})

    def reject(self, code: int, message: str) -> bool:
        """Answer with a JSON-RPC error. Returns False if it was already answered."""
        return self._answer({"id": self.id, "error": {"code": code, "message": message}})

    def _answer(self, message: dict[str, Any]) -> bool:
        with self._lock:
            if self.response is not None:
                return False
            self.response = message
        try:
            self._send(message)
        finally:
            self._settled.set()
        return True

    def settle(self) -> None:
        """Mark the request moot (resolved elsewhere, turn over, or transport gone)."""
        self._settled.set()

    def wait_settled(self, timeout: float | None = None) -> bool:
        return self._settled.wait(timeout)
