"""Approval policies: who may approve, self-approval, N of M, rejections and missing policies."""

from __future__ import annotations

from typing import Any

import pytest

from registry import (
    ApprovalMissing,
    ApprovalPolicy,
    ApproverNotAllowed,
    DuplicateDecision,
    NoApprovalPolicy,
    SelfApprovalNotAllowed,
)

NAME = "credit-scoring"


@pytest.fixture
def candidate(registry: Any, models: Any) -> Any:
    """Version v1.0.0, registered by alice and waiting in staging."""
    registry.register_model(NAME, models.logistic, version="v1", metadata={"accuracy": 0.91})
    return registry.promote_model(NAME, "v1", "dev", "staging")


@pytest.fixture
def two_of_three(registry: Any) -> ApprovalPolicy:
    return registry.set_approval_required(
        stage="production", approvers=["bob", "carol", "dave"], min_approvals=2
    )


def promote(registry: Any, **options: Any) -> Any:
    return registry.promote_model(NAME, "v1", "staging", "production", **options)


def test_policy_is_returned(two_of_three: ApprovalPolicy) -> None:
    assert two_of_three.stage == "production"
    assert two_of_three.approvers == ["bob", "carol", "dave"]
    assert two_of_three.min_approvals == 2


def test_approval_is_recorded(registry: Any, candidate: Any, two_of_three: Any, clock: Any) -> None:
    clock.advance(minutes=30)
    registry.approve_model(NAME, "v1", "bob", "offline metrics look good")

    last = registry.history(NAME)[-1]

    assert last.event == "Approved"
    assert last.actor == "bob"
    assert last.reason == "offline metrics look good"
    assert last.details == {"stage": "production", "approver": "bob"}
    assert last.effective_at == clock.now


def test_approval_visible_on_version(registry: Any, candidate: Any, two_of_three: Any) -> None:
    approved = registry.approve_model(NAME, "v1", "bob", "looks good")

    assert approved.approvals["production"]["bob"]["decision"] == "approved"
    assert approved.approvals["production"]["bob"]["comments"] == "looks good"


def test_approver_must_be_listed(registry: Any, candidate: Any, two_of_three: Any) -> None:
    before = len(registry.history(NAME))

    with pytest.raises(ApproverNotAllowed) as raised:
        registry.approve_model(NAME, "v1", "mallory", "ship it")

    assert "'mallory'" in str(raised.value)
    assert "bob, carol, dave" in str(raised.value)
    assert len(registry.history(NAME)) == before


def test_unlisted_rejecter_is_not_allowed(registry: Any, candidate: Any, two_of_three: Any) -> None:
    with pytest.raises(ApproverNotAllowed):
        registry.reject_model(NAME, "v1", "mallory", "do not like it")


def test_self_approval_is_rejected(registry: Any, candidate: Any) -> None:
    registry.set_approval_required(stage="production", approvers=["alice", "bob"], min_approvals=1)
    before = len(registry.history(NAME))

    with pytest.raises(SelfApprovalNotAllowed) as raised:
        registry.approve_model(NAME, "v1", "alice", "my own model is fine")

    assert "'alice'" in str(raised.value)
    assert len(registry.history(NAME)) == before


def test_registrant_set_by_actor_argument(registry: Any, models: Any) -> None:
    registry.register_model(NAME, models.logistic, version="v2", actor="bob")
    registry.set_approval_required(stage="production", approvers=["alice", "bob"], min_approvals=1)

    with pytest.raises(SelfApprovalNotAllowed):
        registry.approve_model(NAME, "v2", "bob")


def test_registrant_never_counts_as_approver(registry: Any, candidate: Any) -> None:
    registry.set_approval_required(stage="production", approvers=["alice", "bob", "carol"], min_approvals=2)
    registry.approve_model(NAME, "v1", "bob")

    with pytest.raises(ApprovalMissing) as raised:
        promote(registry)

    assert raised.value.may_approve == ["carol"]


def test_duplicate_approval_is_rejected(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.approve_model(NAME, "v1", "bob", "first look")
    before = len(registry.history(NAME))

    with pytest.raises(DuplicateDecision) as raised:
        registry.approve_model(NAME, "v1", "bob", "second look")

    assert "'bob'" in str(raised.value)
    assert len(registry.history(NAME)) == before


def test_duplicate_approval_counts_once(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.approve_model(NAME, "v1", "bob")
    with pytest.raises(DuplicateDecision):
        registry.approve_model(NAME, "v1", "bob")

    with pytest.raises(ApprovalMissing) as raised:
        promote(registry)

    assert raised.value.approved_by == ["bob"]


def test_one_of_two_required_is_missing(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.approve_model(NAME, "v1", "bob")
    before = len(registry.history(NAME))

    with pytest.raises(ApprovalMissing):
        promote(registry)

    assert len(registry.history(NAME)) == before
    assert registry.get_model(NAME, version="v1").stage == "staging"


def test_two_of_three_promotes(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.approve_model(NAME, "v1", "bob")
    registry.approve_model(NAME, "v1", "dave")

    promoted = promote(registry)

    assert promoted.stage == "production"
    assert registry.history(NAME)[-1].details["approved_by"] == ["bob", "dave"]


def test_missing_approvals_list_remaining_approvers(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.approve_model(NAME, "v1", "carol")

    with pytest.raises(ApprovalMissing) as raised:
        promote(registry)

    assert raised.value.may_approve == ["bob", "dave"]
    assert "who may still approve: bob, dave" in str(raised.value)
    assert "needs 2 approval(s) and has 1" in str(raised.value)


def test_no_approvals_lists_everyone(registry: Any, candidate: Any, two_of_three: Any) -> None:
    with pytest.raises(ApprovalMissing) as raised:
        promote(registry)

    assert raised.value.may_approve == ["bob", "carol", "dave"]


def test_approval_for_other_stage_not_counted(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.set_approval_required(stage="staging", approvers=["bob", "carol"], min_approvals=1)
    registry.approve_model(NAME, "v1", "bob", stage="staging")
    registry.approve_model(NAME, "v1", "carol", stage="staging")

    with pytest.raises(ApprovalMissing):
        promote(registry)


def test_staging_policy_guards_staging(registry: Any, models: Any) -> None:
    registry.register_model(NAME, models.logistic, version="v1")
    registry.set_approval_required(stage="staging", approvers=["bob"], min_approvals=1)

    with pytest.raises(ApprovalMissing):
        registry.promote_model(NAME, "v1", "dev", "staging")

    registry.approve_model(NAME, "v1", "bob", stage="staging")
    assert registry.promote_model(NAME, "v1", "dev", "staging").stage == "staging"


def test_later_policy_replaces_earlier(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.set_approval_required(stage="production", approvers=["erin"], min_approvals=1)
    registry.approve_model(NAME, "v1", "erin")

    assert promote(registry).stage == "production"


# --- rejections -----------------------------------------------------------------


def test_rejection_recorded_with_reason(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.reject_model(NAME, "v1", "carol", "recall dropped on the March cohort")

    last = registry.history(NAME)[-1]

    assert last.event == "Rejected"
    assert last.actor == "carol"
    assert last.reason == "recall dropped on the March cohort"
    assert last.details["approver"] == "carol"


def test_rejection_visible_on_version(registry: Any, candidate: Any, two_of_three: Any) -> None:
    rejected = registry.reject_model(NAME, "v1", "carol", "recall dropped")

    assert rejected.approvals["production"]["carol"]["decision"] == "rejected"
    assert rejected.approvals["production"]["carol"]["comments"] == "recall dropped"


def test_rejection_blocks_enough_approvals(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.approve_model(NAME, "v1", "bob")
    registry.approve_model(NAME, "v1", "dave")
    registry.reject_model(NAME, "v1", "carol", "recall dropped")

    with pytest.raises(ApprovalMissing) as raised:
        promote(registry)

    assert raised.value.rejected_by == ["carol"]
    assert "rejected by: carol" in str(raised.value)


def test_rejecter_may_still_approve(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.reject_model(NAME, "v1", "carol", "recall dropped")

    with pytest.raises(ApprovalMissing) as raised:
        promote(registry)

    assert "carol" in raised.value.may_approve


def test_rejecter_approval_lifts_block(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.approve_model(NAME, "v1", "bob")
    registry.reject_model(NAME, "v1", "carol", "recall dropped")
    registry.approve_model(NAME, "v1", "carol", "fixed by retraining on March data")

    assert promote(registry).stage == "production"


def test_duplicate_rejection_is_rejected(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.reject_model(NAME, "v1", "carol", "recall dropped")

    with pytest.raises(DuplicateDecision):
        registry.reject_model(NAME, "v1", "carol", "still dropped")


# --- approval_required ----------------------------------------------------------


def test_required_without_policy_is_rejected(registry: Any, candidate: Any) -> None:
    before = len(registry.history(NAME))

    with pytest.raises(NoApprovalPolicy) as raised:
        promote(registry, approval_required=True)

    assert "'production'" in str(raised.value)
    assert "set_approval_required(" in str(raised.value)
    assert len(registry.history(NAME)) == before
    assert registry.get_model(NAME, version="v1").stage == "staging"


def test_required_with_approvals_promotes(registry: Any, candidate: Any, two_of_three: Any) -> None:
    registry.approve_model(NAME, "v1", "bob")
    registry.approve_model(NAME, "v1", "carol")

    assert promote(registry, approval_required=True).stage == "production"


def test_policy_applies_when_not_required(registry: Any, candidate: Any, two_of_three: Any) -> None:
    with pytest.raises(ApprovalMissing):
        promote(registry, approval_required=False)


def test_no_policy_promotes_freely(registry: Any, candidate: Any) -> None:
    assert promote(registry).stage == "production"


def test_approval_without_policy_is_rejected(registry: Any, candidate: Any) -> None:
    with pytest.raises(NoApprovalPolicy):
        registry.approve_model(NAME, "v1", "bob")


def test_policy_persists_across_registries(make_registry: Any, candidate: Any, two_of_three: Any) -> None:
    with pytest.raises(ApprovalMissing):
        make_registry().promote_model(NAME, "v1", "staging", "production")
