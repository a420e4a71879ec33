"""The one vocabulary for sandbox and approval settings, and its translation to the wire.

Users say ``sandbox="full-access"`` and ``approval_policy="ask"`` everywhere: in
``Codex.thread_start()``, ``Thread.turn()``, the asyncio client and the notebook's
``--sandbox`` / ``--approval``.  Codex's own wire values (``"danger-full-access"``,
``"on-request"`` plus ``approvalsReviewer``) are an implementation detail translated
here and nowhere else, so the two vocabularies can never drift apart again.

=================  ===========================================================
sandbox            what commands the agent runs may touch
=================  ===========================================================
``read-only``      read anything, write nothing (codex ``read-only``)
``workspace-write`` write inside the working folder (codex ``workspace-write``)
``full-access``    no sandbox at all (codex ``danger-full-access``)
=================  ===========================================================

=================  ===========================================================
approval           who decides when the agent wants to leave the sandbox
=================  ===========================================================
``ask``            a person: every request waits for a decision
                   (``approvalPolicy: "on-request"``, ``approvalsReviewer: "user"``)
``review``         codex's own reviewer model decides
                   (``approvalPolicy: "on-request"``, ``approvalsReviewer: "auto_review"``)
``deny``           nobody is asked and nothing escalates: commands stay in the sandbox
                   (``approvalPolicy: "never"``)
=================  ===========================================================
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from .errors import InvalidArgumentError

__all__ = [
    "APPROVALS",
    "SANDBOXES",
    "Approval",
    "Sandbox",
    "approval_fields",
    "check_approval",
    "check_sandbox",
    "sandbox_mode",
    "sandbox_policy",
]

Sandbox = Literal["read-only", "workspace-write", "full-access"]
Approval = Literal["ask", "review", "deny"]

SANDBOXES: tuple[Sandbox, ...] = get_args(Sandbox)
APPROVALS: tuple[Approval, ...] = get_args(Approval)

_SANDBOX_MODES: dict[str, str] = {
    "read-only": "read-only",
    "workspace-write": "workspace-write",
    "full-access": "danger-full-access",
}
_SANDBOX_POLICIES: dict[str, dict[str, str]] = {
    "read-only": {"type": "readOnly"},
    "workspace-write": {"type": "workspaceWrite"},
    "full-access": {"type": "dangerFullAccess"},
}
_APPROVAL_FIELDS: dict[str, dict[str, str]] = {
    "ask": {"approvalPolicy": "on-request", "approvalsReviewer": "user"},
    "review": {"approvalPolicy": "on-request", "approvalsReviewer": "auto_review"},
    "deny": {"approvalPolicy": "never"},
}
# codex's wire words, so a user who knows them is told the word we use instead
_SANDBOX_WIRE_WORDS = {"danger-full-access": "full-access", "readonly": "read-only"}
_APPROVAL_WIRE_WORDS = {
    "on-request": "ask (a person decides) or review (codex's reviewer decides)",
    "never": "deny",
    "untrusted": "ask",
    "on-failure": "ask",
}


def check_sandbox(value: object, *, name: str = "sandbox") -> Sandbox:
    """``value`` if it is one of :data:`SANDBOXES`; else an error saying which word to use."""
    if isinstance(value, str) and value in _SANDBOX_MODES:
        return value  # type: ignore[return-value]  # narrowed by the membership test
    hint = ""
    if isinstance(value, str) and value in _SANDBOX_WIRE_WORDS:
        hint = f" ({value!r} is codex's own word; here it is {_SANDBOX_WIRE_WORDS[value]!r})"
    raise InvalidArgumentError(
        f"{name}={value!r} is not a sandbox setting{hint}; use one of {', '.join(SANDBOXES)}"
    )


def check_approval(value: object, *, name: str = "approval_policy") -> Approval:
    """``value`` if it is one of :data:`APPROVALS`; else an error saying which word to use."""
    if isinstance(value, str) and value in _APPROVAL_FIELDS:
        return value  # type: ignore[return-value]  # narrowed by the membership test
    hint = ""
    if isinstance(value, str) and value in _APPROVAL_WIRE_WORDS:
        hint = f" ({value!r} is codex's own word; here use {_APPROVAL_WIRE_WORDS[value]})"
    raise InvalidArgumentError(
        f"{name}={value!r} is not an approval setting{hint}; use one of {', '.join(APPROVALS)}: "
        "ask (a person decides every request), review (codex's reviewer model decides), "
        "deny (never ask; commands stay inside the sandbox)"
    )


def sandbox_mode(value: object) -> str | None:
    """The ``sandbox`` field of thread/start, thread/resume and thread/fork."""
    return None if value is None else _SANDBOX_MODES[check_sandbox(value)]


def sandbox_policy(value: object) -> dict[str, Any] | None:
    """The ``sandboxPolicy`` field of turn/start (a tagged object on the wire)."""
    return None if value is None else dict(_SANDBOX_POLICIES[check_sandbox(value)])


def approval_fields(value: object) -> dict[str, str]:
    """``approvalPolicy`` and, where it matters, ``approvalsReviewer`` for one approval word."""
    return {} if value is None else dict(_APPROVAL_FIELDS[check_approval(value)])
