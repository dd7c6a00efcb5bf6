"""Governance: verification of the event log and artifacts, and compliance audit reports.

``ModelGovernance(registry=registry).verify()`` reads every stored event in
log order, recomputes each stream's hash chain (see ``registry.integrity``)
and checks every artifact against its recorded digest. It reports the first
broken link of each stream: an altered event, a removed event, events out of
order, an event without a hash, or a missing or altered artifact.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

from registry.integrity import HASH_FIELD, content_hash

if TYPE_CHECKING:
    from registry.api import ModelRegistry
    from registry.audit import AuditReport

# Events read from the log per query while verifying.
VERIFY_PAGE_SIZE = 1000

# How far from its stored position an event's recorded position is searched for,
# to tell events that were moved from events whose content was changed.
REORDER_SEARCH_DISTANCE = 16

ProblemKind = Literal[
    "altered", "removed", "out_of_order", "unhashed", "artifact_missing", "artifact_altered"
]


@dataclass(frozen=True)
class IntegrityProblem:
    """One broken link: what is wrong, and which stream, version and event it concerns."""

    kind: ProblemKind
    stream: str
    """The model name, ``registry settings``, or ``experiment NAME run ID``."""
    position: int | None
    """The event's position in its stream (``registry history`` shows it)."""
    event: str | None
    """The event type, such as ``Promoted``."""
    version: str | None
    """The model version the event or artifact belongs to, if any."""
    message: str

    @property
    def event_id(self) -> str | None:
        """The event's id, ``STREAM#POSITION``."""
        return None if self.position is None else f"{self.stream}#{self.position}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "stream": self.stream,
            "position": self.position,
            "event": self.event,
            "event_id": self.event_id,
            "version": self.version,
            "message": self.message,
        }


@dataclass(frozen=True)
class VerificationResult:
    """The outcome of ``ModelGovernance.verify()``."""

    events_checked: int
    streams_checked: int
    artifacts_checked: int
    problems: list[IntegrityProblem] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)
    """The ``event_hash`` of the last event of each stream, by stream name.

    Keep a copy: the chain cannot show that a stream's newest events were
    removed, but a head that no longer matches a copy taken earlier does.
    """
    checked_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> IntegrityProblem | None:
        return self.problems[0] if self.problems else None

    def summary(self) -> str:
        """Return one line with the counts checked and the outcome."""
        checked = (
            f"{_count(self.events_checked, 'event')} in {_count(self.streams_checked, 'stream')} "
            f"and {_count(self.artifacts_checked, 'artifact')}"
        )
        if self.ok:
            return f"verified {checked}: the hash chains and artifact digests hold"
        first = self.problems[0]
        return f"verification failed after checking {checked}: {_count(len(self.problems), 'problem')}; first: {first.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "streams_checked": self.streams_checked,
            "artifacts_checked": self.artifacts_checked,
            "checked_at": self.checked_at.isoformat(),
            "problems": [problem.to_dict() for problem in self.problems],
            "heads": dict(self.heads),
            "summary": self.summary(),
        }


# The last hash of a stream whose last event could not be read.
UNKNOWN = object()


@dataclass
class _Stream:
    """The position and last hash of one stream, as verification reads the log."""

    name: str
    position: int = 0
    last_hash: str | None | object = None


class ModelGovernance:
    """Integrity checks and compliance audit reports over one registry."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def verify(self, expected_heads: Mapping[str, str] | None = None) -> VerificationResult:
        """Recompute every stream's hash chain and every artifact's digest.

        ``expected_heads`` is a copy of ``heads`` from an earlier verification.
        Each of those hashes must still be in its stream, which shows when the
        newest events of a stream, or a whole stream, were removed since.
        The catalog read model gives the same check without a copy, for the
        events it has applied.

        Reads the whole log once, in pages, so memory grows with the number of
        streams and artifacts, not with the number of events.
        """
        streams: dict[str, _Stream] = {}
        artifacts: dict[str, tuple[str, int, str]] = {}
        problems: list[IntegrityProblem] = []
        expected = {digest: name for name, digest in (expected_heads or {}).items()}
        found: set[str] = set()
        events = 0
        for notification in self._notifications():
            events += 1
            stream_id = str(notification.originator_id)
            stream = streams.get(stream_id)
            if stream is None:
                stream = streams[stream_id] = _Stream(name=f"stream {stream_id}")
            problem = self._check_event(stream, notification)
            if problem is not None:
                problems.append(problem)
            if stream.last_hash in expected:
                found.add(stream.last_hash)
            registered = _registered_artifact(notification)
            if registered is not None:
                digest, version = registered
                artifacts.setdefault(digest, (stream.name, notification.originator_version, version))
        for digest, (name, position, version) in artifacts.items():
            problem = self._check_artifact(digest, name, position, version)
            if problem is not None:
                problems.append(problem)
        by_name = {stream.name: stream for stream in streams.values()}
        problems.extend(self._check_catalog(streams))
        for digest, name in expected.items():
            if digest not in found:
                problems.append(_missing_head(name, digest, by_name.get(name)))
        heads = {stream.name: stream.last_hash for stream in streams.values() if isinstance(stream.last_hash, str)}
        return VerificationResult(
            events_checked=events,
            streams_checked=len(streams),
            artifacts_checked=len(artifacts),
            problems=problems,
            heads=heads,
        )

    def generate_audit_report(
        self, model: str, start_date: dt.datetime | dt.date | str, end_date: dt.datetime | dt.date | str
    ) -> AuditReport:
        """Return the compliance audit report of ``model`` for the window from ``start_date`` to ``end_date``.

        A bare date means the end of that day, UTC, as everywhere in the
        registry; pass a datetime to start the window at midnight.
        """
        from registry.audit import build_audit_report

        return build_audit_report(self.registry, model, start_date, end_date, verification=self.verify())

    # -- the checks --

    def _notifications(self) -> Iterator[Any]:
        recorder = self.registry._store.recorder
        start = 1
        while True:
            page = recorder.select_notifications(start=start, limit=VERIFY_PAGE_SIZE)
            if not page:
                return
            yield from page
            start = page[-1].id + 1

    def _check_event(self, stream: _Stream, notification: Any) -> IntegrityProblem | None:
        """Check one event against its stream so far, then advance the stream to it.

        The stream advances even past a broken event, to the hash that event
        records, so one change is reported once and not again at every later event.
        """
        position = notification.originator_version
        event = notification.topic.rpartition(":")[2]
        previous_position, previous_hash = stream.position, stream.last_hash
        stream.position = max(stream.position, position)
        stream.last_hash = UNKNOWN

        def problem(kind: ProblemKind, detail: str, version: str | None = None) -> IntegrityProblem:
            label = f"{event}, version {version}" if version else event
            where = f"event {stream.name}#{position} ({label})"
            return IntegrityProblem(kind, stream.name, position, event, version, f"{where}: {detail}")

        try:
            state = orjson.loads(notification.state)
        except orjson.JSONDecodeError as error:
            return problem("altered", f"its stored bytes are not valid JSON ({error}); the event was altered")
        if not isinstance(state, dict):
            return problem("altered", "its stored bytes are not a JSON object; the event was altered")
        if position == 1:
            stream.name = _stream_name(event, state, str(notification.originator_id), stream.name)
        version = _version_of(state)
        recorded = state.get(HASH_FIELD)
        if isinstance(recorded, str):
            stream.last_hash = recorded
        if orjson.dumps(state) != bytes(notification.state):
            return problem("altered", "its stored bytes differ from the registry's encoding of them; the event was altered", version)
        if not isinstance(recorded, str):
            return problem(
                "unhashed",
                "it has no event_hash, so it was stored before hash chaining or its hash was stripped",
                version,
            )
        stream_id = notification.originator_id
        if content_hash(notification.topic, stream_id, position, state) != recorded:
            moved_from = _recorded_position(notification.topic, stream_id, position, state, recorded)
            if moved_from is not None:
                return problem(
                    "out_of_order",
                    f"it holds the event recorded at position {moved_from}; the events are out of order",
                    version,
                )
            return problem("altered", f"its content does not match its hash {recorded[:12]}…; the event was altered", version)
        if position > previous_position + 1:
            missing = f"position {previous_position + 1}" if position == previous_position + 2 else (
                f"positions {previous_position + 1} to {position - 1}"
            )
            return problem("removed", f"the event at {missing} before it is missing; events were removed", version)
        if position <= previous_position:
            return problem(
                "out_of_order", f"it comes after position {previous_position} in the log; the events are out of order", version
            )
        if previous_hash is not UNKNOWN and state.get("previous_hash") != previous_hash:
            return problem(
                "altered",
                "its previous_hash does not match the hash of the event before it; the chain was rewritten",
                version,
            )
        return None

    def _check_catalog(self, streams: Mapping[str, _Stream]) -> list[IntegrityProblem]:
        """Compare each model's last position with the position the catalog read model applied.

        The catalog only applies events that were in the log, so a model whose
        catalog position is beyond the end of its stream lost its newest events.
        """
        path = self.registry.read_models_path
        if not path.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            try:
                rows = db.execute("SELECT id, name, aggregate_version FROM catalog_models").fetchall()
            except sqlite3.OperationalError:  # the catalog was never built in this home
                return []
        problems = []
        hint = "; if the read models belong to another store, rebuild them with `registry rebuild`"
        for stream_id, name, applied in rows:
            stream = streams.get(stream_id)
            if stream is None:
                message = (
                    f"stream {name}: missing from the log, but the catalog read model applied {applied} of its "
                    f"events; the model's events were removed{hint}"
                )
                problems.append(IntegrityProblem("removed", name, None, None, None, message))
            elif stream.position < applied:
                message = (
                    f"stream {name}: the log ends at position {stream.position}, but the catalog read model applied "
                    f"events up to position {applied}; the newest events were removed{hint}"
                )
                problems.append(IntegrityProblem("removed", name, applied, None, None, message))
        return problems

    def _check_artifact(self, digest: str, stream: str, position: int, version: str) -> IntegrityProblem | None:
        path = self.registry.artifacts.path_of(digest)
        where = f"artifact sha256:{digest[:12]}… of {stream} {version} (registered in event {stream}#{position})"
        try:
            actual = _file_sha256(path)
        except FileNotFoundError:
            return IntegrityProblem(
                "artifact_missing", stream, position, "Registered", version,
                f"{where}: missing, no file at {path}; restore it from a backup",
            )  # fmt: skip
        if actual != digest:
            return IntegrityProblem(
                "artifact_altered", stream, position, "Registered", version,
                f"{where}: altered, the file's bytes have sha256 {actual[:12]}…; restore it from a backup",
            )  # fmt: skip
        return None


def _stream_name(event: str, state: dict[str, Any], stream_id: str, fallback: str) -> str:
    if event == "ModelCreated" and isinstance(state.get("name"), str):
        return str(state["name"])
    if event == "SettingsCreated":
        return "registry settings"
    if event == "ExperimentStarted" and isinstance(state.get("experiment"), str):
        # Runs of one experiment share its name, so the run's id distinguishes them.
        return f"experiment {state['experiment']} run {stream_id[:8]}"
    return fallback


def _registered_artifact(notification: Any) -> tuple[str, str] | None:
    """Return the artifact digest and version of a Registered event, or None for other events."""
    if not notification.topic.endswith(":Registered"):
        return None
    try:
        state = orjson.loads(notification.state)
        return str(state["artifact"]["sha256"]), str(state["version"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def _missing_head(name: str, digest: str, stream: _Stream | None) -> IntegrityProblem:
    if stream is None:
        message = f"stream {name}: missing from the log, although its head {digest[:12]}… was recorded earlier"
    else:
        message = (
            f"stream {name}: the head {digest[:12]}… recorded earlier is no longer in the stream, "
            f"which now ends at position {stream.position}; its newest events were removed or replaced"
        )
    return IntegrityProblem("removed", name, None, None, None, message)


def _version_of(state: dict[str, Any]) -> str | None:
    for key in ("version", "to_version"):
        if isinstance(state.get(key), str):
            return str(state[key])
    return None


def _recorded_position(topic: str, stream_id: Any, position: int, state: dict[str, Any], recorded: str) -> int | None:
    """Return the nearby position whose hash matches ``recorded``, if the event was moved."""
    low = max(1, position - REORDER_SEARCH_DISTANCE)
    for candidate in range(low, position + REORDER_SEARCH_DISTANCE + 1):
        if candidate != position and content_hash(topic, stream_id, candidate, state) == recorded:
            return candidate
    return None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _file_sha256(path: Any) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["IntegrityProblem", "ModelGovernance", "VerificationResult"]
