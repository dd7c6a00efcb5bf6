"""The lineage read model, a directed graph from training data to deployments.

Each registered version adds a chain of nodes from the lineage fields of its
metadata, skipping the fields it lacks::

    data:<training_data_version> → feature-engineering:<feature_engineering_version>
        → experiment:<experiment> → model:<name>-<version>

It also adds one ``feature:<column>`` node per input column and, when
``parent_model`` is set, an edge from the parent model. Promotions to
production and rollbacks add edges to ``deployment:<name>/production``, and
a deployment edge keeps every period the version served.

The projection stores the graph in the ``lineage_nodes`` and ``lineage_edges``
tables. The query functions read it back as a ``networkx.DiGraph``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import networkx as nx
import orjson
import sqlite_utils

from projections.rows import query_rows
from registry.errors import InvalidInput, VersionNotFound
from registry.events import DomainEvent, ModelCreated, Promoted, Registered, RolledBack, SignatureSet
from registry.naming import split_reference
from registry.versioning import normalize_version, sort_key

NODES_TABLE = "lineage_nodes"
EDGES_TABLE = "lineage_edges"
# The model name of each aggregate id, because only ModelCreated carries the name.
MODELS_TABLE = "lineage_models"

# Node kinds, in the order the tree shows them from top to bottom.
DATA = "data"
FEATURE_SET = "feature-engineering"
EXPERIMENT = "experiment"
MODEL = "model"
FEATURE = "feature"
DEPLOYMENT = "deployment"
_KIND_ORDER = {
    kind: rank for rank, kind in enumerate((DATA, FEATURE_SET, EXPERIMENT, MODEL, DEPLOYMENT, FEATURE))
}

# Edge relations, read as "<source> <relation> <target>". Each pair of node
# kinds has one relation, so the graph never needs two edges between two nodes.
PROCESSED_BY = "processed_by"  # data → feature set
USED_BY = "used_by"  # data or feature set → experiment
TRAINED = "trained"  # data or feature set → model, when no experiment is recorded
PRODUCED = "produced"  # experiment → model
INPUT_OF = "input_of"  # feature column → model
PARENT_OF = "parent_of"  # parent model → model
DEPLOYED_TO = "deployed_to"  # model → deployment

# The metadata fields of the chain, from the data down to the model.
_CHAIN = (
    (DATA, "training_data_version"),
    (FEATURE_SET, "feature_engineering_version"),
    (EXPERIMENT, "experiment"),
)
_LINEAGE_FIELDS = ("training_data_version", "feature_engineering_version", "experiment", "parent_model")

PRODUCTION = "production"


def model_node(name: str, version: str) -> str:
    """Return the node id of a model version, such as ``model:fraud-detection-v3.1.0``."""
    return f"{MODEL}:{name}-{version}"


def deployment_node(name: str) -> str:
    """Return the node id of a model's production deployment."""
    return f"{DEPLOYMENT}:{name}/{PRODUCTION}"


# --- the projection -------------------------------------------------------------


class LineageProjection:
    """The projection that builds the lineage graph.

    It applies Registered, SignatureSet, Promoted and RolledBack events. It
    also reads ModelCreated, which is the only event that carries the model
    name. Every other event leaves the graph as it is.
    """

    name: ClassVar[str] = "lineage"

    def create_schema(self, db: sqlite_utils.Database) -> None:
        """Create the node, edge and model-name tables when they are missing."""
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {NODES_TABLE} "
            "(id TEXT PRIMARY KEY, kind TEXT NOT NULL, label TEXT NOT NULL, attributes TEXT NOT NULL)"
        )
        db.execute(f"CREATE INDEX IF NOT EXISTS {NODES_TABLE}_kind ON {NODES_TABLE} (kind)")
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {EDGES_TABLE} "
            "(source TEXT NOT NULL, target TEXT NOT NULL, relation TEXT NOT NULL, attributes TEXT NOT NULL, "
            "PRIMARY KEY (source, target, relation))"
        )
        db.execute(f"CREATE INDEX IF NOT EXISTS {EDGES_TABLE}_target ON {EDGES_TABLE} (target)")
        db.execute(
            f"CREATE INDEX IF NOT EXISTS {EDGES_TABLE}_current ON {EDGES_TABLE} (target, relation) "
            "WHERE json_extract(attributes, '$.current') = 1"
        )
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {MODELS_TABLE} (model_id TEXT PRIMARY KEY, name TEXT NOT NULL)"
        )

    def reset(self, db: sqlite_utils.Database) -> None:
        """Delete the whole graph, inside the caller's transaction."""
        for table in (EDGES_TABLE, NODES_TABLE, MODELS_TABLE):
            db.execute(f"DELETE FROM {table}")

    def apply(self, db: sqlite_utils.Database, event: DomainEvent, position: int) -> None:
        """Add the nodes and edges of one event, inside the caller's transaction."""
        if isinstance(event, ModelCreated):
            db.execute(
                f"INSERT INTO {MODELS_TABLE} (model_id, name) VALUES (?, ?) "
                "ON CONFLICT(model_id) DO UPDATE SET name = excluded.name",
                [str(event.originator_id), event.name],
            )
        elif isinstance(event, Registered):
            self._on_registered(db, event)
        elif isinstance(event, SignatureSet):
            name = _model_name(db, event.originator_id)
            _link_inputs(db, model_node(name, event.version), event.signature.inputs)
        elif isinstance(event, Promoted):
            name = _model_name(db, event.originator_id)
            if event.to_stage == PRODUCTION:
                _deploy(db, name, event.version, event.effective_at, via="promotion")
            elif event.from_stage == PRODUCTION:
                _retire(db, model_node(name, event.version), deployment_node(name), event.effective_at)
        elif isinstance(event, RolledBack):
            name = _model_name(db, event.originator_id)
            _deploy(db, name, event.to_version, event.effective_at, via="rollback", reason=event.reason)

    def end_page(self, db: sqlite_utils.Database) -> None:
        """Do nothing, because each event is written as it is applied."""

    def discard_page(self) -> None:
        """Do nothing, because no state is kept between events."""

    def after_batch(self, db: sqlite_utils.Database) -> None:
        """Do nothing, because the tables are the whole read model."""

    def _on_registered(self, db: sqlite_utils.Database, event: Registered) -> None:
        name = _model_name(db, event.originator_id)
        model = model_node(name, event.version)
        lineage = {field: _text(event.metadata.get(field)) for field in _LINEAGE_FIELDS}
        attributes = {
            "name": name,
            "version": event.version,
            "registered": True,
            "registered_at": event.effective_at.isoformat(),
            "increment": event.increment,
            **lineage,
        }
        _put_node(db, model, MODEL, f"{name}-{event.version}", attributes, replace=True)

        # A missing field is skipped and its neighbours are joined, so the chain stays connected.
        upstream: tuple[str, str] | None = None
        for kind, field in _CHAIN:
            value = lineage[field]
            if value is None:
                continue
            node = f"{kind}:{value}"
            _put_node(db, node, kind, value)
            if upstream is not None:
                _put_edge(db, upstream[0], node, _chain_relation(upstream[1], kind))
            upstream = (node, kind)
        if upstream is not None:
            _put_edge(db, upstream[0], model, _chain_relation(upstream[1], MODEL))

        _link_inputs(db, model, _input_columns(event))

        parent_reference = lineage["parent_model"]
        if parent_reference is not None:
            parent, parent_label, parent_attributes = _parent_node(parent_reference)
            if parent != model:
                _put_node(db, parent, MODEL, parent_label, parent_attributes)
                _put_edge(db, parent, model, PARENT_OF)


# --- writing the tables ---------------------------------------------------------


def _model_name(db: sqlite_utils.Database, originator_id: uuid.UUID) -> str:
    rows = list(query_rows(db, f"SELECT name FROM {MODELS_TABLE} WHERE model_id = ?", [str(originator_id)]))
    if not rows:
        # ModelCreated is the first event of every model, so this means the log is damaged.
        raise LookupError(
            f"the lineage projection has no model name for aggregate {originator_id} because its "
            "ModelCreated event was not applied. Rebuild the lineage projection"
        )
    return str(rows[0]["name"])


def _put_node(
    db: sqlite_utils.Database,
    node: str,
    kind: str,
    label: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    replace: bool = False,
) -> None:
    """Insert a node. An existing node keeps its attributes unless ``replace`` is true."""
    on_conflict = (
        "DO UPDATE SET kind = excluded.kind, label = excluded.label, attributes = excluded.attributes"
        if replace
        else "DO NOTHING"
    )
    db.execute(
        f"INSERT INTO {NODES_TABLE} (id, kind, label, attributes) VALUES (?, ?, ?, ?) "
        f"ON CONFLICT(id) {on_conflict}",
        [node, kind, label, _dumps(attributes or {})],
    )


def _put_edge(
    db: sqlite_utils.Database,
    source: str,
    target: str,
    relation: str,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    """Insert an edge, or replace the attributes of the existing one."""
    db.execute(
        f"INSERT INTO {EDGES_TABLE} (source, target, relation, attributes) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(source, target, relation) DO UPDATE SET attributes = excluded.attributes",
        [source, target, relation, _dumps(attributes or {})],
    )


def _chain_relation(source_kind: str, target_kind: str) -> str:
    if target_kind == FEATURE_SET:
        return PROCESSED_BY
    if target_kind == EXPERIMENT:
        return USED_BY
    return PRODUCED if source_kind == EXPERIMENT else TRAINED


def _input_columns(event: Registered) -> dict[str, str | None]:
    """Return the version's input columns with their types, from the signature, else the metadata."""
    if event.signature.inputs:
        return dict(event.signature.inputs)
    features = event.metadata.get("features")
    if isinstance(features, Mapping):
        return {str(column): str(type_name) for column, type_name in features.items()}
    if isinstance(features, list):
        return {str(column): None for column in features}
    return {}


def _link_inputs(db: sqlite_utils.Database, model: str, columns: Mapping[str, str | None]) -> None:
    """Make ``columns`` the model's input features, replacing the ones it had."""
    previous = [
        row["source"]
        for row in query_rows(
            db, f"SELECT source FROM {EDGES_TABLE} WHERE target = ? AND relation = ?", [model, INPUT_OF]
        )
    ]
    db.execute(f"DELETE FROM {EDGES_TABLE} WHERE target = ? AND relation = ?", [model, INPUT_OF])

    for position, (column, type_name) in enumerate(columns.items()):
        node = f"{FEATURE}:{column}"
        _put_node(db, node, FEATURE, column)
        attributes: dict[str, Any] = {"position": position}
        if type_name is not None:
            attributes["type"] = type_name
        _put_edge(db, node, model, INPUT_OF, attributes)

    # A column that no version uses any more is no longer a known feature.
    for node in previous:
        db.execute(
            f"DELETE FROM {NODES_TABLE} WHERE id = ? "
            f"AND NOT EXISTS (SELECT 1 FROM {EDGES_TABLE} WHERE source = ?)",
            [node, node],
        )


def _parent_node(reference: str) -> tuple[str, str, dict[str, Any]]:
    """Return the node id, label and placeholder attributes of a ``parent_model`` reference.

    A reference such as ``fraud-detection-v3`` is normalised to the version's
    shown form. Text that is not NAME-vVERSION is kept as it was given.
    """
    try:
        name, version_text = split_reference(reference)
        version = normalize_version(version_text)
    except InvalidInput:
        return f"{MODEL}:{reference}", reference, {"registered": False}
    return (
        model_node(name, version),
        f"{name}-{version}",
        {"name": name, "version": version, "registered": False},
    )


def _deploy(
    db: sqlite_utils.Database,
    name: str,
    version: str,
    at: dt.datetime,
    *,
    via: str,
    reason: str | None = None,
) -> None:
    """Make the version the current one of its model's production deployment."""
    model = model_node(name, version)
    deployment = deployment_node(name)
    _put_node(db, deployment, DEPLOYMENT, f"{name}/{PRODUCTION}", {"model": name, "stage": PRODUCTION})

    # The version it replaces stays in the graph, as a deployment edge that is no longer current.
    for source in _current_sources(db, deployment):
        if source != model:
            _retire(db, source, deployment, at)

    attributes = _edge_attributes(db, model, deployment, DEPLOYED_TO) or {"periods": []}
    if attributes.get("current"):
        return
    period: dict[str, Any] = {"deployed_at": at.isoformat(), "retired_at": None, "via": via}
    if reason is not None:
        period["reason"] = reason
    attributes.update(
        current=True,
        effective_at=at.isoformat(),
        retired_at=None,
        periods=[*attributes.get("periods", []), period],
    )
    _put_edge(db, model, deployment, DEPLOYED_TO, attributes)


def _retire(db: sqlite_utils.Database, model: str, deployment: str, at: dt.datetime) -> None:
    """Mark the model's deployment edge as no longer current, closing its last period."""
    attributes = _edge_attributes(db, model, deployment, DEPLOYED_TO)
    if attributes is None or not attributes.get("current"):
        return
    periods = [dict(period) for period in attributes.get("periods", [])]
    if periods:
        periods[-1]["retired_at"] = at.isoformat()
    attributes.update(current=False, retired_at=at.isoformat(), periods=periods)
    _put_edge(db, model, deployment, DEPLOYED_TO, attributes)


def _current_sources(db: sqlite_utils.Database, deployment: str) -> list[str]:
    # The partial index on current deployment edges serves this query without reading the edges
    # of every version ever deployed, which made each promotion slower as a model grew.
    rows = query_rows(
        db,
        f"SELECT source FROM {EDGES_TABLE} WHERE target = ? AND relation = ? "
        f"AND json_extract(attributes, '$.current') = 1",
        [deployment, DEPLOYED_TO],
    )
    return [row["source"] for row in rows]


def _edge_attributes(
    db: sqlite_utils.Database, source: str, target: str, relation: str
) -> dict[str, Any] | None:
    rows = list(
        query_rows(
            db, f"SELECT attributes FROM {EDGES_TABLE} WHERE source = ? AND target = ? AND relation = ?",
            [source, target, relation],
        )
    )
    return orjson.loads(rows[0]["attributes"]) if rows else None  # type: ignore[no-any-return]


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _dumps(value: Mapping[str, Any]) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# --- reading the graph ----------------------------------------------------------


def load_graph(db: sqlite_utils.Database) -> nx.DiGraph:
    """Read the lineage tables into a DiGraph.

    Nodes carry ``kind``, ``label`` and their stored attributes; edges carry
    ``relation`` and theirs. Before the projection has created its tables,
    the graph is empty.
    """
    graph = nx.DiGraph()
    if not db[NODES_TABLE].exists():
        return graph
    for row in query_rows(db, f"SELECT id, kind, label, attributes FROM {NODES_TABLE} ORDER BY id"):
        graph.add_node(row["id"], kind=row["kind"], label=row["label"], **orjson.loads(row["attributes"]))
    for row in query_rows(
        db, f"SELECT source, target, relation, attributes FROM {EDGES_TABLE} ORDER BY source, target"
    ):
        graph.add_edge(
            row["source"], row["target"], relation=row["relation"], **orjson.loads(row["attributes"])
        )
    return graph


def graph_to_node_link(graph: nx.DiGraph) -> dict[str, Any]:
    """Return ``graph`` as node-link data, which ``networkx.node_link_graph`` reads back."""
    return nx.node_link_data(graph, edges="edges")  # type: ignore[no-any-return]


class Lineage:
    """The lineage of one model version, as a graph of its ancestors, itself and its descendants.

    ``get_lineage`` also adds the input columns and deployments of every
    model in it. ``graph`` is a ``networkx.DiGraph`` whose nodes carry
    ``kind`` and ``label``, and whose edges carry ``relation``. ``root`` is
    the node id of the version, such as ``model:fraud-detection-v3.1.0``.
    """

    def __init__(self, graph: nx.DiGraph, root: str) -> None:
        if root not in graph:
            raise InvalidInput(
                f"root {root!r} is not a node of the lineage graph. "
                "Pass the node id of a model version, such as 'model:fraud-detection-v3.1.0'",
                value=root,
            )
        self.graph = graph
        self.root = root

    def __repr__(self) -> str:
        return f"Lineage(root={self.root!r}, nodes={self.graph.number_of_nodes()})"

    def data_sources(self) -> list[str]:
        """Return the training data versions upstream of this version, including its parents' data."""
        return self._upstream(DATA)

    def feature_sets(self) -> list[str]:
        """Return the feature-engineering versions upstream of this version, including its parents'."""
        return self._upstream(FEATURE_SET)

    def experiments(self) -> list[str]:
        """Return the experiments upstream of this version, including those that produced its parents."""
        return self._upstream(EXPERIMENT)

    def features(self) -> list[str]:
        """Return this version's own input columns, in signature order."""
        return _inputs_of(self.graph, self.root)

    def deployments(self, *, current_only: bool = False) -> list[str]:
        """Return the deployments this version has served, or only those it serves now."""
        return sorted(
            self.graph.nodes[target]["label"]
            for _, target, attributes in self.graph.out_edges(self.root, data=True)
            if attributes.get("relation") == DEPLOYED_TO and (attributes.get("current") or not current_only)
        )

    def to_tree(self) -> str:
        """Render the lineage as an indented text tree, from the data sources down to deployments.

        Each model lists its input columns, its parent and its children. A
        child with no data or experiment of its own is expanded under its
        parent. A node reached a second time is marked "(shown above)".
        """
        return _TreeRenderer(self.graph, self.root).render()

    def to_node_link(self) -> dict[str, Any]:
        """Return the graph as JSON-serialisable node-link data, with the root in ``graph``."""
        data = graph_to_node_link(self.graph)
        data["graph"] = {**data["graph"], "root": self.root}
        return data

    def to_json(self) -> str:
        """Return the node-link data as indented JSON text."""
        return orjson.dumps(self.to_node_link(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()

    # -- helpers --

    def _upstream(self, kind: str) -> list[str]:
        labels = {
            self.graph.nodes[n]["label"]
            for n in nx.ancestors(self.graph, self.root)
            if _kind(self.graph, n) == kind
        }
        return sorted(labels)


class _TreeRenderer:
    """The lines and visited nodes of one text rendering, whose layout ``Lineage.to_tree`` describes."""

    def __init__(self, graph: nx.DiGraph, root: str) -> None:
        self.graph = graph
        self.root = root
        self.lines = [f"Lineage of {graph.nodes[root]['label']}"]
        self.shown: set[str] = set()
        self.expanded: set[str] = set()

    def render(self) -> str:
        for node in self._roots():
            self._render_root(node)
        # A cycle of parent_of edges leaves models that no root reaches.
        for node in sorted(self.graph, key=lambda node: _order(self.graph, node)):
            if node not in self.shown and _kind(self.graph, node) != FEATURE:
                self._render_root(node)
        return "\n".join(self.lines)

    def _roots(self) -> list[str]:
        """Return the nodes with no incoming edge other than from input columns."""
        roots = [
            node
            for node in self.graph
            if _kind(self.graph, node) != FEATURE
            and all(relation == INPUT_OF for _, _, relation in self.graph.in_edges(node, data="relation"))
        ]
        return sorted(roots, key=lambda node: _order(self.graph, node))

    def _render_root(self, node: str) -> None:
        self.lines.append(self._describe(node))
        self.shown.add(node)
        self._render_children(node, "", came_from=None)

    def _render_children(self, node: str, prefix: str, came_from: str | None) -> None:
        items = self._items_under(node, came_from)
        if not items:
            return
        self.expanded.add(node)
        for index, (text, child) in enumerate(items):
            last = index == len(items) - 1
            if child is not None and child in self.expanded:
                text, child = f"{text}  (shown above)", None
            self.lines.append(f"{prefix}{'└── ' if last else '├── '}{text}")
            if child is not None:
                self.shown.add(child)
                self._render_children(child, prefix + ("    " if last else "│   "), came_from=node)

    def _items_under(self, node: str, came_from: str | None) -> list[tuple[str, str | None]]:
        """Return the lines under ``node``, each with the node to expand below it, if any."""
        items: list[tuple[str, str | None]] = []
        if _kind(self.graph, node) == MODEL:
            inputs = _inputs_of(self.graph, node)
            if inputs:
                items.append((f"inputs ({len(inputs)}): {', '.join(inputs)}", None))
            for parent in self._related(self.graph.in_edges(node, data="relation"), 0):
                if parent != came_from:
                    items.append((f"parent: {self._describe(parent)}", None))
            for child in self._related(self.graph.out_edges(node, data="relation"), 1):
                # A child without its own data or experiment appears nowhere else, so it is expanded here.
                expand = not self._has_upstream_chain(child)
                items.append((f"child: {self._describe(child)}", child if expand else None))
        for child in self._chain_successors(node):
            items.append((self._describe(child, self.graph.edges[node, child]), child))
        return items

    def _related(self, edges: Iterable[tuple[str, str, str]], end: int) -> list[str]:
        """Return the models at ``end`` (0 for source, 1 for target) of the parent_of edges."""
        return sorted(edge[end] for edge in edges if edge[2] == PARENT_OF)

    def _has_upstream_chain(self, node: str) -> bool:
        return any(
            relation not in (INPUT_OF, PARENT_OF)
            for _, _, relation in self.graph.in_edges(node, data="relation")
        )

    def _chain_successors(self, node: str) -> list[str]:
        """Return the node's successors along data → features → experiment → model → deployment edges."""
        children = [
            target
            for _, target, relation in self.graph.out_edges(node, data="relation")
            if relation not in (INPUT_OF, PARENT_OF)
        ]
        return sorted(children, key=lambda child: _order(self.graph, child))

    def _describe(self, node: str, edge: Mapping[str, Any] | None = None) -> str:
        text = node
        if node == self.root:
            text += "  ◀ this version"
        if edge is not None and edge.get("relation") == DEPLOYED_TO:
            if edge.get("current"):
                text += f"  (current since {_shown(edge.get('effective_at'))})"
            else:
                periods = edge.get("periods") or [{}]
                deployed = _shown(periods[-1].get("deployed_at"))
                text += f"  (deployed {deployed}, retired {_shown(edge.get('retired_at'))})"
        return text


def _inputs_of(graph: nx.DiGraph, model: str) -> list[str]:
    """Return the input columns of a model node, in signature order."""
    inputs = [
        (attributes.get("position", 0), graph.nodes[source]["label"])
        for source, _, attributes in graph.in_edges(model, data=True)
        if attributes.get("relation") == INPUT_OF
    ]
    return [label for _, label in sorted(inputs)]


def _kind(graph: nx.DiGraph, node: str) -> str:
    return str(graph.nodes[node].get("kind", ""))


def _order(graph: nx.DiGraph, node: str) -> tuple[int, str]:
    return _KIND_ORDER.get(_kind(graph, node), len(_KIND_ORDER)), str(graph.nodes[node].get("label", node))


def _shown(value: object) -> str:
    """Return a stored ISO 8601 time to the second, as the registry shows times."""
    if not isinstance(value, str):
        return "unknown"
    return dt.datetime.fromisoformat(value).isoformat(timespec="seconds")


# --- queries the API calls ------------------------------------------------------


def get_lineage(db: sqlite_utils.Database, name: str, version: str) -> Lineage:
    """Return the lineage of one registered version.

    ``version`` is in its shown form, such as 'v3.1.0'. A version that the
    projection has not applied yet raises ``VersionNotFound``.
    """
    graph = load_graph(db)
    root = model_node(name, version)
    if root not in graph or not graph.nodes[root].get("registered"):
        raise VersionNotFound(name, version, _known_versions(graph, name))
    nodes = nx.ancestors(graph, root) | nx.descendants(graph, root) | {root}

    # Each model in the lineage keeps all its input columns and deployments, so none is shown cut short.
    for model in [node for node in nodes if _kind(graph, node) == MODEL]:
        nodes |= {
            source for source, _, relation in graph.in_edges(model, data="relation") if relation == INPUT_OF
        }
        nodes |= {
            target
            for _, target, relation in graph.out_edges(model, data="relation")
            if relation == DEPLOYED_TO
        }
    return Lineage(graph.subgraph(nodes).copy(), root)


def models_using_feature(db: sqlite_utils.Database, feature: str) -> list[str]:
    """Return the versions, such as 'fraud-detection-v3.1.0', that use a feature column or feature set."""
    graph = load_graph(db)
    return _labels(graph, _models_using(graph, feature))


def feature_impact(db: sqlite_utils.Database, feature: str) -> dict[str, Any]:
    """Return every model version and deployment downstream of a feature column or feature set.

    ``models`` lists the versions that use the feature and, through
    ``parent_of`` edges, every version derived from them. ``deployments``
    lists each deployment any of them has served, with ``current`` telling
    whether one of them serves it now and ``serving`` naming that version.
    """
    graph = load_graph(db)
    direct = _models_using(graph, feature)
    impacted = set(direct)
    for model in direct:
        impacted |= {node for node in nx.descendants(graph, model) if _is_registered_model(graph, node)}

    deployments: dict[str, dict[str, Any]] = {}
    for model in impacted:
        for _, target, attributes in graph.out_edges(model, data=True):
            if attributes.get("relation") != DEPLOYED_TO:
                continue
            entry = deployments.setdefault(
                target,
                {"deployment": graph.nodes[target]["label"], "current": False, "serving": None, "models": []},
            )
            entry["models"].append(model)
            if attributes.get("current"):
                entry["current"] = True
                entry["serving"] = graph.nodes[model]["label"]
    for entry in deployments.values():
        entry["models"] = _labels(graph, entry["models"])

    return {
        "feature": feature,
        "models": _labels(graph, impacted),
        "deployments": [deployments[node] for node in sorted(deployments)],
    }


def _models_using(graph: nx.DiGraph, feature: object) -> set[str]:
    """Return the model nodes whose input columns or feature set include ``feature``."""
    if not isinstance(feature, str) or not feature.strip():
        raise InvalidInput(
            f"invalid feature {feature!r}: expected a feature column such as 'amount' "
            "or a feature-engineering version such as 'fe-v2'",
            value=feature,
        )
    column = f"{FEATURE}:{feature}"
    feature_set = f"{FEATURE_SET}:{feature}"
    if column not in graph and feature_set not in graph:
        raise _unknown_feature(graph, feature)

    models: set[str] = set()
    if column in graph:
        models |= {
            target for _, target, relation in graph.out_edges(column, data="relation") if relation == INPUT_OF
        }
    if feature_set in graph:
        models |= {
            node
            for node, attributes in graph.nodes(data=True)
            if attributes.get("kind") == MODEL and attributes.get("feature_engineering_version") == feature
        }
    return models


def _unknown_feature(graph: nx.DiGraph, feature: str) -> InvalidInput:
    known = sorted(
        {
            attributes["label"]
            for _, attributes in graph.nodes(data=True)
            if attributes.get("kind") in (FEATURE, FEATURE_SET)
        }
    )
    close = difflib.get_close_matches(feature, known, n=3)
    suggestion = f" Did you mean {', '.join(repr(match) for match in close)}?" if close else ""
    return InvalidInput(
        f"unknown feature {feature!r}: no registered version has it as an input column "
        f"or as its feature_engineering_version.{suggestion} "
        "get_lineage(name, version).features() and .feature_sets() list the ones a version uses",
        value=feature,
    )


def _known_versions(graph: nx.DiGraph, name: str) -> list[str]:
    versions = [
        str(attributes["version"])
        for node, attributes in graph.nodes(data=True)
        if _is_registered_model(graph, node) and attributes.get("name") == name
    ]
    return sorted(versions, key=sort_key)


def _is_registered_model(graph: nx.DiGraph, node: str) -> bool:
    attributes = graph.nodes[node]
    return attributes.get("kind") == MODEL and bool(attributes.get("registered"))


def _labels(graph: nx.DiGraph, models: Iterable[str]) -> list[str]:
    """Return the labels of registered model nodes, by name and then by version."""
    registered = [node for node in set(models) if _is_registered_model(graph, node)]
    registered.sort(key=lambda node: (graph.nodes[node]["name"], sort_key(graph.nodes[node]["version"])))
    return [graph.nodes[node]["label"] for node in registered]
