"""Compliance audit reports: what happened to one model in a time window, and whether it kept the rules.

``build_audit_report`` replays the model's events and the registry settings'
events once (``registry.audit.collection``), collects the facts of the window
into an ``AuditReport`` (``registry.audit.facts``), and judges the compliance
checkpoints against them (``registry.audit.checkpoints``). The report renders
as Markdown, as one self-contained HTML file with an SVG chart, and as JSON
(``registry.audit.rendering``); the renderings only read the collected facts.
"""

from registry.audit.collection import build_audit_report
from registry.audit.facts import (
    FAILED,
    NOT_APPLICABLE,
    PASSED,
    AuditReport,
    Checkpoint,
    EventRef,
    Finding,
)

__all__ = [
    "FAILED",
    "NOT_APPLICABLE",
    "PASSED",
    "AuditReport",
    "Checkpoint",
    "EventRef",
    "Finding",
    "build_audit_report",
]
