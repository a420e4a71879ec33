"""Params building: the one sandbox/approval vocabulary, checked options, checked input."""

from __future__ import annotations

import pytest

from codex_notebook import InvalidArgumentError
from codex_notebook._params import check_options, input_items, output_schema_of, turn_params
from codex_notebook.policies import (
    APPROVALS,
    SANDBOXES,
    approval_fields,
    check_approval,
    check_sandbox,
    sandbox_mode,
    sandbox_policy,
)


def test_the_vocabulary_is_the_notebooks() -> None:
    assert SANDBOXES == ("read-only", "workspace-write", "full-access")
    assert APPROVALS == ("ask", "review", "deny")


def test_each_sandbox_word_maps_to_both_wire_forms() -> None:
    assert [sandbox_mode(s) for s in SANDBOXES] == [
        "read-only",
        "workspace-write",
        "danger-full-access",
    ]
    assert [sandbox_policy(s) for s in SANDBOXES] == [
        {"type": "readOnly"},
        {"type": "workspaceWrite"},
        {"type": "dangerFullAccess"},
    ]
    assert sandbox_mode(None) is None and sandbox_policy(None) is None


def test_each_approval_word_maps_to_policy_and_reviewer() -> None:
    assert approval_fields("ask") == {"approvalPolicy": "on-request", "approvalsReviewer": "user"}
    assert approval_fields("review") == {
        "approvalPolicy": "on-request",
        "approvalsReviewer": "auto_review",
    }
    assert approval_fields("deny") == {"approvalPolicy": "never"}
    assert approval_fields(None) == {}


@pytest.mark.parametrize("value", ["readonly", "danger-full-access", "", None, 3])
def test_other_sandbox_values_are_refused(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="read-only, workspace-write, full-access"):
        check_sandbox(value)


@pytest.mark.parametrize("value", ["on-request", "never", "untrusted", "yes", None])
def test_other_approval_values_are_refused(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="ask, review, deny"):
        check_approval(value)


def test_turn_params_use_the_same_words() -> None:
    params = turn_params("th", "hi", sandbox="full-access", approval_policy="deny")
    assert params["sandboxPolicy"] == {"type": "dangerFullAccess"}
    assert params["approvalPolicy"] == "never" and "approvalsReviewer" not in params


def test_unknown_options_name_the_valid_ones() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_options("thread/start", {"developer_instruction": "x"}, where="thread_start()")
    message = str(info.value)
    assert "thread_start() got an unknown option developer_instruction=" in message
    assert "Did you mean developer_instructions=?" in message
    assert "service_tier" in message


def test_known_options_are_sent_by_their_wire_name_and_none_is_dropped() -> None:
    assert check_options(
        "thread/start", {"service_tier": "flex", "personality": None}, where="thread_start()"
    ) == {"serviceTier": "flex"}


def test_input_must_be_text_or_items() -> None:
    assert input_items(["a", {"type": "image", "url": "u"}]) == [
        {"type": "text", "text": "a"},
        {"type": "image", "url": "u"},
    ]
    with pytest.raises(InvalidArgumentError, match="needs some input"):
        input_items([])
    with pytest.raises(InvalidArgumentError, match="not int"):
        input_items(["a", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="pydantic model class or a JSON Schema"):
        output_schema_of(3)  # type: ignore[arg-type]
