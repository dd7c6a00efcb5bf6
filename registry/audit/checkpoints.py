"""The compliance checkpoints of an audit report, judged from one replay of the model's events.

Each checkpoint has one finding per subject (a deployment, a version past its
end of life, a rollback), with the ids of the events that are its evidence.
It fails when any finding fails, and is not applicable when the window gives
it no subject.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from registry.audit.facts import (
    FAILED,
    NOT_APPLICABLE,
    PASSED,
    Checkpoint,
    EventRef,
    Finding,
    IntegrityFact,
    Status,
    count,
    event_ref,
    iso,
)
from registry.events import Approved, Rejected
from registry.signatures import breaking_changes
from registry.versioning import parse_version

if TYPE_CHECKING:
    from registry.audit.collection import DeploymentTrack, Replay
    from registry.governance import VerificationResult


def _production_subjects(replay: Replay) -> list[DeploymentTrack]:
    """Return the deployment behind the production version at the window's start, then those in the window."""
    subjects = [replay.at_start] if replay.at_start is not None else []
    return subjects + [d for d in replay.deployments if d.in_window]


def _outcome(
    key: str, title: str, findings: list[Finding], subjects: tuple[str, str], not_applicable: str
) -> Checkpoint:
    """Build a checkpoint that fails when any finding fails, and is not applicable without findings.

    ``subjects`` names one subject and several, such as ``("rollback", "rollbacks")``.
    """
    if not findings:
        return Checkpoint(key, title, NOT_APPLICABLE, not_applicable, [])
    checked = f"{len(findings)} {subjects[0] if len(findings) == 1 else subjects[1]} checked"
    failed = [finding for finding in findings if not finding.ok]
    if failed:
        return Checkpoint(key, title, FAILED, f"{checked}, {len(failed)} failed", findings)
    return Checkpoint(key, title, PASSED, f"{checked}, all passed", findings)


def check_approvals(replay: Replay) -> Checkpoint:
    """Check that each production version had the approvals its promotion's policy in force required.

    A version restored by a rollback is judged by its last promotion to production.
    """
    findings = []
    for deployment in _production_subjects(replay):
        if deployment.fact.kind == "promotion":
            ok, text, evidence = _approval_outcome(replay, deployment)
            findings.append(Finding(ok, f"{_deployed(deployment)}: {text}", evidence))
            continue
        restored = deployment.restored
        if restored is None:
            text = "no earlier promotion of this version to production was found"
            findings.append(Finding(False, f"{_deployed(deployment)}: {text}", [deployment.fact.event]))
            continue
        ok, text, evidence = _approval_outcome(replay, restored)
        text = f"when it was promoted at {iso(restored.fact.at)} ({restored.fact.event.event_id}), {text}"
        findings.append(Finding(ok, f"{_deployed(deployment)}: {text}", [deployment.fact.event, *evidence]))
    return _outcome(
        "approvals",
        "Every production version was approved as the policy in force required, "
        "by someone other than its registrant",
        findings,
        ("production version", "production versions"),
        "no version was in production during the window",
    )


def _approval_outcome(replay: Replay, deployment: DeploymentTrack) -> tuple[bool, str, list[EventRef]]:
    """Judge one promotion to production against the production approval policy in force at its time."""
    registrant = deployment.registered_by
    approvals = {a: e for a, e in deployment.decisions.items() if isinstance(e, Approved)}
    rejections = {a: e for a, e in deployment.decisions.items() if isinstance(e, Rejected)}
    evidence = [deployment.fact.event]
    notes: list[str] = []

    in_force = replay.settings.policy_at("production", deployment.fact.at)
    if in_force is None:
        policy_text = (
            "no production approval policy was in force, and this checkpoint asks for at least one approval "
            "by someone other than the registrant"
        )
        required, listed = 1, None
    else:
        policy, policy_fact = in_force
        evidence.append(policy_fact.event)
        policy_text = f"the policy in force ({policy_fact.event.event_id}) required {policy_fact.describe()}"
        required, listed = policy.min_approvals, set(policy.approvers)

    counted = [a for a in approvals if a != registrant and (listed is None or a in listed)]
    unlisted = [a for a in approvals if listed is not None and a not in listed]
    standing_rejections = [a for a in rejections if a != registrant and (listed is None or a in listed)]
    if registrant in approvals:
        notes.append(
            f"the approval by {registrant} does not count because {registrant} registered the version"
        )
    if unlisted:
        notes.append(f"approvals by {', '.join(unlisted)} do not count because the policy did not list them")
    if standing_rejections:
        notes.append(f"the rejection by {', '.join(standing_rejections)} still stood")
    evidence += [event_ref(replay.model, approvals[a]) for a in approvals]
    evidence += [event_ref(replay.model, rejections[a]) for a in standing_rejections]

    ok = len(counted) >= required and not standing_rejections
    text = (
        f"approved by {', '.join(counted) or 'nobody'}, {len(counted)} of {required} required; {policy_text}"
    )
    return ok, "; ".join([text, *notes]), evidence


def check_signatures(replay: Replay) -> Checkpoint:
    """Check that each production version had an input signature keeping the inputs of the one it replaced.

    A new major version may change the inputs. A rollback restores a version
    that was checked when it was promoted, so only its signature is checked.
    """
    findings = []
    for deployment in _production_subjects(replay):
        signature = deployment.signature
        signature_ref = event_ref(replay.model, deployment.signature_event)
        evidence = [deployment.fact.event, signature_ref]
        recorded = (
            f"its signature has {count(len(signature.inputs), 'input')} and "
            f"{count(len(signature.outputs), 'output')} ({signature_ref.event_id})"
        )
        if not signature.inputs:
            text = "no input signature was recorded; record one with set_model_signature()"
            findings.append(Finding(False, f"{_deployed(deployment)}: {text}", evidence))
            continue
        replaced = deployment.replaced_signature
        if deployment.fact.kind == "rollback" or replaced is None:
            findings.append(Finding(True, f"{_deployed(deployment)}: {recorded}", evidence))
            continue
        previous, previous_signature = replaced
        problems = breaking_changes(previous_signature, signature)
        version = deployment.fact.version
        if not problems:
            text = f"{recorded}, and it keeps every input of {previous}, which it replaced"
            findings.append(Finding(True, f"{_deployed(deployment)}: {text}", evidence))
        elif parse_version(version).major > parse_version(previous).major:
            changes = "; ".join(problems)
            text = f"{recorded}; it changes the inputs of {previous} ({changes}) as a new major version"
            findings.append(Finding(True, f"{_deployed(deployment)}: {text}", evidence))
        else:
            text = (
                f"{recorded}, but it breaks the signature of {previous}, which it replaced "
                f"({'; '.join(problems)}), without being a new major version"
            )
            findings.append(Finding(False, f"{_deployed(deployment)}: {text}", evidence))
    return _outcome(
        "signatures",
        "Every production version has a recorded signature that keeps the inputs of the version it replaced",
        findings,
        ("production version", "production versions"),
        "no version was in production during the window",
    )


def check_end_of_life(replay: Replay, effective_end: dt.datetime) -> Checkpoint:
    """Check that no deprecated version was in production after its end of life, up to ``effective_end``."""
    findings = []
    for version, track in replay.tracks.items():
        deprecation = track.deprecation
        if deprecation is None or deprecation.end_of_life is None or deprecation.effective_at > replay.end:
            continue
        end_of_life = deprecation.end_of_life
        if end_of_life > effective_end:
            continue
        deprecated_ref = event_ref(replay.model, deprecation)
        violations = []
        for deployment in replay.deployments:
            if deployment.fact.version != version:
                continue
            until = deployment.ended_by.effective_at if deployment.ended_by else effective_end
            served_from = max(deployment.fact.at, end_of_life, replay.start)
            served_until = min(until, effective_end)
            if served_from < served_until or (deployment.fact.at >= end_of_life and deployment.in_window):
                violations.append((deployment, served_from, served_until))
        if not violations and end_of_life < replay.start:
            continue
        reached = f"{version} reached its end of life at {iso(end_of_life)} ({deprecated_ref.event_id})"
        if not violations:
            findings.append(Finding(True, f"{reached} and was not in production after it", [deprecated_ref]))
            continue
        for deployment, served_from, served_until in violations:
            evidence = [deprecated_ref, deployment.fact.event]
            if deployment.ended_by is not None and deployment.ended_by.effective_at <= effective_end:
                ending_ref = event_ref(replay.model, deployment.ended_by)
                evidence.append(ending_ref)
                ending = f"{iso(served_until)} ({ending_ref.event_id})"
            else:
                ending = f"{iso(served_until)}, the end of the report"
            text = (
                f"{reached} but was in production from {iso(served_from)} to {ending}, "
                f"deployed by {deployment.fact.event.event_id}"
            )
            findings.append(Finding(False, text, evidence))
    return _outcome(
        "end_of_life",
        "No deprecated version was promoted or in production after its end of life",
        findings,
        ("version past its end of life", "versions past their end of life"),
        "no version reached its end of life in the window",
    )


def check_rollback_reasons(replay: Replay) -> Checkpoint:
    """Check that each rollback in the window records a reason."""
    findings = []
    for rollback in replay.rollbacks:
        when = f"at {iso(rollback.at)} by {rollback.by} ({rollback.event.event_id})"
        described = f"rollback to {rollback.to_version} {when}"
        if rollback.reason.strip():
            findings.append(Finding(True, f"{described}: {rollback.reason}", [rollback.event]))
        else:
            findings.append(Finding(False, f"{described} has no reason", [rollback.event]))
    return _outcome(
        "rollback_reasons",
        "Every rollback has a reason",
        findings,
        ("rollback", "rollbacks"),
        "no rollback took effect in the window",
    )


def check_integrity(verification: VerificationResult, model: str) -> Checkpoint:
    """Turn the verification of the whole event log and every artifact into a checkpoint."""
    fact = integrity_fact(verification, model)
    evidence = [fact.first_problem] if fact.first_problem else []
    text = fact.summary
    if not fact.ok:
        text += f"; {fact.problems_in_model} of the problems concern {model}"
    title = "The event log's hash chains and the artifacts' digests verify"
    status: Status = PASSED if fact.ok else FAILED
    summary = (
        "the whole event log verifies" if fact.ok else f"{count(fact.problems, 'integrity problem')} found"
    )
    return Checkpoint("integrity", title, status, summary, [Finding(fact.ok, text, evidence)])


def _deployed(deployment: DeploymentTrack) -> str:
    fact = deployment.fact
    change = "promoted to production" if fact.kind == "promotion" else "restored to production by a rollback"
    return f"{fact.version}, {change} at {iso(fact.at)} by {fact.by} ({fact.event.event_id})"


def integrity_fact(verification: VerificationResult, model: str) -> IntegrityFact:
    """Return the verification's outcome, with its first problem as an event reference."""
    first = verification.first_problem
    ref = None
    if first is not None and first.event_id is not None:
        ref = EventRef(first.event_id, first.event or "unknown", None)
    return IntegrityFact(
        ok=verification.ok,
        summary=verification.summary(),
        events_checked=verification.events_checked,
        problems=len(verification.problems),
        problems_in_model=sum(1 for problem in verification.problems if problem.stream == model),
        first_problem=ref,
        first_problem_message=first.message if first else None,
        checked_at=verification.checked_at,
    )
