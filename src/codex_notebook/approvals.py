"""What we answer to server requests when nobody else does: the safe "no".

The official SDK accepts approvals by default; we never do.  Every known
request method has a refusing answer of the right shape; unknown methods get
``None`` here, which the router turns into a JSON-RPC "method not supported"
error, so the server is never left waiting.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APPROVAL_METHODS",
    "COMMAND_APPROVAL",
    "FILE_CHANGE_APPROVAL",
    "PERMISSIONS_APPROVAL",
    "TOOL_CALL",
    "answer_for",
    "decline_all",
    "default_response",
]

COMMAND_APPROVAL = "item/commandExecution/requestApproval"
FILE_CHANGE_APPROVAL = "item/fileChange/requestApproval"
PERMISSIONS_APPROVAL = "item/permissions/requestApproval"
USER_INPUT = "item/tool/requestUserInput"
TOOL_CALL = "item/tool/call"
ELICITATION = "mcpServer/elicitation/request"
LEGACY_EXEC_APPROVAL = "execCommandApproval"
LEGACY_PATCH_APPROVAL = "applyPatchApproval"

#: Requests that ask a person to allow something (rendered as buttons in a notebook).
APPROVAL_METHODS = frozenset(
    {
        COMMAND_APPROVAL,
        FILE_CHANGE_APPROVAL,
        PERMISSIONS_APPROVAL,
        LEGACY_EXEC_APPROVAL,
        LEGACY_PATCH_APPROVAL,
    }
)

_REFUSALS: dict[str, dict[str, Any]] = {
    COMMAND_APPROVAL: {"decision": "decline"},
    FILE_CHANGE_APPROVAL: {"decision": "decline"},
    PERMISSIONS_APPROVAL: {"permissions": {}},  # grant nothing
    USER_INPUT: {"answers": {}},
    ELICITATION: {"action": "decline", "content": None},
    LEGACY_EXEC_APPROVAL: {"decision": "denied"},
    LEGACY_PATCH_APPROVAL: {"decision": "denied"},
    TOOL_CALL: {
        "success": False,
        "contentItems": [
            {"type": "inputText", "text": "ERROR: this client provides no tools on this thread."}
        ],
    },
}

_LEGACY_DECISIONS = {
    "accept": "approved",
    "acceptForSession": "approved_for_session",
    "decline": "denied",
    "cancel": "abort",
}


def default_response(method: str) -> dict[str, Any] | None:
    """The refusing answer for ``method``, or None if we do not know the method."""
    answer = _REFUSALS.get(method)
    return dict(answer) if answer is not None else None


def answer_for(method: str, params: dict[str, Any], decision: str) -> dict[str, Any]:
    """The answer carrying a person's decision: accept / acceptForSession / decline / cancel.

    Speaks the legacy vocabulary for the legacy methods, and for permission
    requests grants exactly what was asked (for the session if so chosen).
    """
    if decision not in _LEGACY_DECISIONS:
        raise ValueError(
            f"unknown decision {decision!r}; expected one of {list(_LEGACY_DECISIONS)}"
        )
    if method in (LEGACY_EXEC_APPROVAL, LEGACY_PATCH_APPROVAL):
        return {"decision": _LEGACY_DECISIONS[decision]}
    if method == PERMISSIONS_APPROVAL:
        if decision in ("accept", "acceptForSession"):
            answer: dict[str, Any] = {"permissions": params.get("permissions") or {}}
            answer["scope"] = "session" if decision == "acceptForSession" else "turn"
            return answer
        return {"permissions": {}}
    return {"decision": decision}


def decline_all(request: Any) -> dict[str, Any] | None:
    """The default ``approval_handler``: refuse everything, answer unknown methods with an error."""
    return default_response(request.method)
