"""The lineage projection, driven by a real ProjectionRunner over a real registry's event store.

The history built here, on the test clock (each step a day apart):

- fraud-detection v3.0.0: data v2024-01 → fe-v1 → exp-002, promoted to production;
- fraud-detection v3.1.0: data v2024-01 → fe-v2 → exp-003, parent v3.0.0, promoted to
  production, which archives v3.0.0;
- a rollback to v3.0.0;
- fraud-detection v3.2.0: no lineage fields but ``parent_model='fraud-detection-v3.1'``;
- churn-model v1.0.0: data v2024-01 → exp-010, with no feature-engineering version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import orjson
import pytest

from projections.lineage import (
    DEPLOYED_TO,
    INPUT_OF,
    PARENT_OF,
    PROCESSED_BY,
    PRODUCED,
    USED_BY,
    Lineage,
    LineageProjection,
    feature_impact,
    get_lineage,
    load_graph,
    models_using_feature,
)
from projections import lineage as lineage_module
from projections.runner import ProjectionRunner
from registry import InvalidInput, ModelRegistry, VersionNotFound

NAME = "fraud-detection"
CHURN = "churn-model"
DEPLOYMENT = "deployment:fraud-detection/production"
START = dt.datetime(2024, 1, 10, 9, 0, tzinfo=dt.UTC)


def day(number: int) -> str:
    """Return the ISO time of the test clock ``number`` days after the start."""
    return (START + dt.timedelta(days=number)).isoformat()


def build_history(registry: ModelRegistry, clock: Any, models: Any, after_step: Callable[[], None]) -> None:
    """Run the commands of the module docstring, calling ``after_step`` after each one."""
    steps: list[Callable[[], Any]] = [
        lambda: registry.register_model(
            NAME,
            models.logistic,
            version="v3.0.0",
            metadata={
                "training_data_version": "v2024-01",
                "feature_engineering_version": "fe-v1",
                "experiment": "exp-002",
                "features": models.features_v1,
                "accuracy": 0.91,
            },
        ),
        lambda: registry.promote_model(NAME, "v3.0.0", "dev", "staging"),
        lambda: registry.promote_model(NAME, "v3.0.0", "staging", "production"),
        lambda: registry.register_model(
            NAME,
            models.xgboost,
            version="v3.1.0",
            metadata={
                "training_data_version": "v2024-01",
                "feature_engineering_version": "fe-v2",
                "experiment": "exp-003",
                "parent_model": "fraud-detection-v3.0.0",
                "features": models.features_v2,
                "accuracy": 0.95,
            },
        ),
        lambda: registry.promote_model(NAME, "v3.1.0", "dev", "staging"),
        lambda: registry.promote_model(NAME, "v3.1.0", "staging", "production"),
        lambda: registry.rollback(NAME, "v3.0.0", "false positives rose after v3.1.0"),
        lambda: registry.register_model(
            NAME,
            models.xgboost,
            version="v3.2.0",
            metadata={"parent_model": "fraud-detection-v3.1", "features": models.features_v2},
        ),
        lambda: registry.register_model(
            CHURN,
            models.logistic,
            version="v1",
            metadata={
                "training_data_version": "v2024-01",
                "experiment": "exp-010",
                "features": models.features_v1,
            },
        ),
    ]
    for number, step in enumerate(steps, start=1):
        clock.now = START + dt.timedelta(days=number)
        step()
        after_step()


@pytest.fixture
def runner(registry: ModelRegistry, tmp_path: Path) -> Iterator[ProjectionRunner]:
    projection_runner = ProjectionRunner(
        registry._store.recorder, registry._store.mapper, tmp_path / "read.sqlite3", [LineageProjection()]
    )
    yield projection_runner
    projection_runner.close()


@pytest.fixture
def history(registry: ModelRegistry, clock: Any, models: Any, runner: ProjectionRunner) -> ProjectionRunner:
    """The module's history, applied by one catch-up after the last command."""
    build_history(registry, clock, models, after_step=lambda: None)
    runner.catch_up()
    return runner


def graph_contents(graph: nx.DiGraph) -> tuple[list[Any], list[Any]]:
    """Return the nodes and edges of ``graph`` with their attributes, sorted for comparison."""
    nodes = sorted(
        (node, orjson.dumps(data, option=orjson.OPT_SORT_KEYS)) for node, data in graph.nodes(data=True)
    )
    edges = sorted(
        (source, target, orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
        for source, target, data in graph.edges(data=True)
    )
    return nodes, edges


# --- the graph ------------------------------------------------------------------


def test_registration_builds_chain(history: ProjectionRunner) -> None:
    graph = load_graph(history.db)

    assert graph.edges["data:v2024-01", "feature-engineering:fe-v2"]["relation"] == PROCESSED_BY
    assert graph.edges["feature-engineering:fe-v2", "experiment:exp-003"]["relation"] == USED_BY
    assert graph.edges["experiment:exp-003", "model:fraud-detection-v3.1.0"]["relation"] == PRODUCED


def test_nodes_carry_kind_and_label(history: ProjectionRunner) -> None:
    graph = load_graph(history.db)

    assert graph.nodes["data:v2024-01"]["kind"] == "data"
    assert graph.nodes["data:v2024-01"]["label"] == "v2024-01"
    assert graph.nodes["feature-engineering:fe-v1"]["kind"] == "feature-engineering"
    assert graph.nodes["experiment:exp-002"]["kind"] == "experiment"
    assert graph.nodes["model:fraud-detection-v3.1.0"]["kind"] == "model"
    assert graph.nodes["model:fraud-detection-v3.1.0"]["label"] == "fraud-detection-v3.1.0"
    assert graph.nodes[DEPLOYMENT]["kind"] == "deployment"
    assert graph.nodes[DEPLOYMENT]["label"] == "fraud-detection/production"


def test_model_node_records_registration(history: ProjectionRunner) -> None:
    model = load_graph(history.db).nodes["model:fraud-detection-v3.1.0"]

    assert model["name"] == NAME
    assert model["version"] == "v3.1.0"
    assert model["registered_at"] == day(4)
    assert model["experiment"] == "exp-003"
    assert model["parent_model"] == "fraud-detection-v3.0.0"


def test_chain_without_feature_set_stays_connected(history: ProjectionRunner) -> None:
    graph = load_graph(history.db)

    assert graph.edges["data:v2024-01", "experiment:exp-010"]["relation"] == USED_BY
    assert graph.edges["experiment:exp-010", "model:churn-model-v1.0.0"]["relation"] == PRODUCED
    assert not any(graph.nodes[n]["kind"] == "feature-engineering" for n in graph.predecessors("experiment:exp-010"))


def test_input_features_link_to_model(history: ProjectionRunner, models: Any) -> None:
    graph = load_graph(history.db)
    model = "model:fraud-detection-v3.0.0"

    inputs = [
        source for source, _, relation in graph.in_edges(model, data="relation") if relation == INPUT_OF
    ]
    assert sorted(inputs) == sorted(f"feature:{column}" for column in models.features_v1)
    assert graph.edges[f"feature:{models.features_v1[0]}", model]["type"] == "float"


def test_parent_model_links_versions(history: ProjectionRunner) -> None:
    graph = load_graph(history.db)

    assert (
        graph.edges["model:fraud-detection-v3.0.0", "model:fraud-detection-v3.1.0"]["relation"] == PARENT_OF
    )


def test_short_parent_reference_is_normalised(history: ProjectionRunner) -> None:
    graph = load_graph(history.db)

    assert (
        graph.edges["model:fraud-detection-v3.1.0", "model:fraud-detection-v3.2.0"]["relation"] == PARENT_OF
    )
    assert "model:fraud-detection-v3.1" not in graph


def test_model_without_lineage_fields_has_no_chain(history: ProjectionRunner) -> None:
    graph = load_graph(history.db)

    kinds = {graph.nodes[n]["kind"] for n in graph.predecessors("model:fraud-detection-v3.2.0")}
    assert kinds == {"feature", "model"}


# --- deployments ----------------------------------------------------------------


def test_rollback_makes_target_current(history: ProjectionRunner) -> None:
    edge = load_graph(history.db).edges["model:fraud-detection-v3.0.0", DEPLOYMENT]

    assert edge["relation"] == DEPLOYED_TO
    assert edge["current"] is True
    assert edge["effective_at"] == day(7)


def test_deployment_keeps_every_period(history: ProjectionRunner) -> None:
    edge = load_graph(history.db).edges["model:fraud-detection-v3.0.0", DEPLOYMENT]

    assert [(p["deployed_at"], p["retired_at"], p["via"]) for p in edge["periods"]] == [
        (day(3), day(6), "promotion"),
        (day(7), None, "rollback"),
    ]
    assert edge["periods"][1]["reason"] == "false positives rose after v3.1.0"


def test_replaced_deployment_is_not_current(history: ProjectionRunner) -> None:
    edge = load_graph(history.db).edges["model:fraud-detection-v3.1.0", DEPLOYMENT]

    assert edge["current"] is False
    assert edge["effective_at"] == day(6)
    assert edge["retired_at"] == day(7)


def test_current_deployment_lookup_uses_partial_index(history: ProjectionRunner) -> None:
    # Reading every deployment edge of a model on each promotion made the catch-up of a
    # 10,000-version model take 122 s. With the partial index on current edges it took 4 s.
    plan = [
        row[3]
        for row in history.db.execute(
            "EXPLAIN QUERY PLAN SELECT source FROM lineage_edges WHERE target = ? AND relation = ? "
            "AND json_extract(attributes, '$.current') = 1",
            [DEPLOYMENT, DEPLOYED_TO],
        )
    ]
    current = lineage_module._current_sources(history.db, DEPLOYMENT)

    assert plan == ["SEARCH lineage_edges USING INDEX lineage_edges_current (target=? AND relation=?)"]
    assert current == ["model:fraud-detection-v3.0.0"]


def test_one_current_edge_per_deployment(history: ProjectionRunner) -> None:
    graph = load_graph(history.db)

    current = [source for source, _, data in graph.in_edges(DEPLOYMENT, data=True) if data["current"]]
    assert current == ["model:fraud-detection-v3.0.0"]


def test_archiving_production_retires_edge(
    registry: ModelRegistry, history: ProjectionRunner, clock: Any
) -> None:
    clock.now = START + dt.timedelta(days=20)
    registry.promote_model(NAME, "v3.0.0", "production", "archived")
    history.catch_up()

    edge = load_graph(history.db).edges["model:fraud-detection-v3.0.0", DEPLOYMENT]
    assert edge["current"] is False
    assert edge["retired_at"] == day(20)
    assert edge["periods"][-1]["retired_at"] == day(20)


def test_other_events_leave_graph_alone(
    registry: ModelRegistry, history: ProjectionRunner, clock: Any
) -> None:
    before = graph_contents(load_graph(history.db))

    clock.now = START + dt.timedelta(days=20)
    registry.deprecate_model(NAME, "v3.1.0", "replaced by v3.2.0", end_of_life="2024-12-31")
    registry.set_approval_required("production", approvers=["bob"])
    registry.approve_model(NAME, "v3.2.0", "bob", "reviewed")
    applied = history.catch_up()

    assert applied > 0
    assert graph_contents(load_graph(history.db)) == before


# --- get_lineage ----------------------------------------------------------------


def test_lineage_root_and_scope(history: ProjectionRunner) -> None:
    lineage = get_lineage(history.db, NAME, "v3.1.0")

    assert lineage.root == "model:fraud-detection-v3.1.0"
    assert "model:fraud-detection-v3.0.0" in lineage.graph  # parent
    assert "model:fraud-detection-v3.2.0" in lineage.graph  # child
    assert "model:churn-model-v1.0.0" not in lineage.graph
    assert "experiment:exp-010" not in lineage.graph


def test_lineage_names_training_data(history: ProjectionRunner) -> None:
    assert get_lineage(history.db, NAME, "v3.1.0").data_sources() == ["v2024-01"]
    assert get_lineage(history.db, CHURN, "v1.0.0").data_sources() == ["v2024-01"]


def test_lineage_names_experiments(history: ProjectionRunner) -> None:
    assert get_lineage(history.db, NAME, "v3.0.0").experiments() == ["exp-002"]
    # The parent's experiment also led to v3.1.0.
    assert get_lineage(history.db, NAME, "v3.1.0").experiments() == ["exp-002", "exp-003"]


def test_lineage_names_feature_sets(history: ProjectionRunner) -> None:
    assert get_lineage(history.db, NAME, "v3.1.0").feature_sets() == ["fe-v1", "fe-v2"]
    assert get_lineage(history.db, CHURN, "v1.0.0").feature_sets() == []


def test_lineage_features_in_signature_order(history: ProjectionRunner, models: Any) -> None:
    assert get_lineage(history.db, NAME, "v3.1.0").features() == models.features_v2
    assert get_lineage(history.db, NAME, "v3.0.0").features() == models.features_v1


def test_lineage_lists_deployments(history: ProjectionRunner) -> None:
    retired = get_lineage(history.db, NAME, "v3.1.0")
    serving = get_lineage(history.db, NAME, "v3.0.0")

    assert retired.deployments() == ["fraud-detection/production"]
    assert retired.deployments(current_only=True) == []
    assert serving.deployments(current_only=True) == ["fraud-detection/production"]
    assert get_lineage(history.db, NAME, "v3.2.0").deployments() == []


def test_unknown_version_raises_version_not_found(history: ProjectionRunner) -> None:
    with pytest.raises(VersionNotFound) as caught:
        get_lineage(history.db, NAME, "v9.0.0")

    assert caught.value.known == ["v3.0.0", "v3.1.0", "v3.2.0"]
    assert "v9.0.0" in str(caught.value)


def test_parent_cycle_renders_both_models(
    registry: ModelRegistry, runner: ProjectionRunner, models: Any
) -> None:
    registry.register_model(
        "ranker-a", models.logistic, version="v1", metadata={"parent_model": "ranker-b-v1"}
    )
    registry.register_model(
        "ranker-b", models.logistic, version="v1", metadata={"parent_model": "ranker-a-v1"}
    )
    runner.catch_up()

    tree = get_lineage(runner.db, "ranker-a", "v1.0.0").to_tree()

    assert tree.splitlines()[1] == "model:ranker-a-v1.0.0  ◀ this version"
    assert "child: model:ranker-b-v1.0.0" in tree
    assert "child: model:ranker-a-v1.0.0  ◀ this version  (shown above)" in tree


def test_self_parent_adds_no_edge(registry: ModelRegistry, runner: ProjectionRunner, models: Any) -> None:
    registry.register_model(
        "ranker", models.logistic, version="v1", metadata={"parent_model": "ranker-v1.0.0"}
    )
    runner.catch_up()

    assert not load_graph(runner.db).has_edge("model:ranker-v1.0.0", "model:ranker-v1.0.0")


def test_unregistered_parent_is_placeholder(
    registry: ModelRegistry, runner: ProjectionRunner, models: Any
) -> None:
    registry.register_model("ranker", models.logistic, version="v2", metadata={"parent_model": "ranker-v1"})
    registry.register_model(
        "scorer", models.logistic, version="v1", metadata={"parent_model": "Legacy Scorer 7"}
    )
    runner.catch_up()
    graph = load_graph(runner.db)

    assert graph.nodes["model:ranker-v1.0.0"]["registered"] is False
    assert graph.edges["model:Legacy Scorer 7", "model:scorer-v1.0.0"]["relation"] == PARENT_OF
    with pytest.raises(VersionNotFound) as caught:
        get_lineage(runner.db, "ranker", "v1.0.0")
    assert caught.value.known == ["v2.0.0"]


def test_parent_registered_later_replaces_placeholder(
    registry: ModelRegistry, runner: ProjectionRunner, models: Any
) -> None:
    registry.register_model("ranker", models.logistic, version="v2", metadata={"parent_model": "ranker-v1"})
    registry.register_model("ranker", models.logistic, version="v1", metadata={"experiment": "exp-001"})
    runner.catch_up()

    assert get_lineage(runner.db, "ranker", "v2.0.0").experiments() == ["exp-001"]
    assert load_graph(runner.db).nodes["model:ranker-v1.0.0"]["registered"] is True


def test_unknown_model_lists_no_versions(history: ProjectionRunner) -> None:
    with pytest.raises(VersionNotFound) as caught:
        get_lineage(history.db, "no-such-model", "v1.0.0")

    assert caught.value.known == []


def test_lineage_before_first_catch_up(runner: ProjectionRunner) -> None:
    with pytest.raises(VersionNotFound):
        get_lineage(runner.db, NAME, "v3.0.0")


def test_lineage_on_database_without_tables(tmp_path: Path) -> None:
    import sqlite_utils

    empty = sqlite_utils.Database(tmp_path / "empty.sqlite3")

    assert load_graph(empty).number_of_nodes() == 0
    with pytest.raises(VersionNotFound):
        get_lineage(empty, NAME, "v3.0.0")


# --- rendering ------------------------------------------------------------------


def line_index(lines: list[str], text: str) -> int:
    matches = [index for index, line in enumerate(lines) if text in line]
    assert matches, f"no line contains {text!r} in:\n" + "\n".join(lines)
    return matches[0]


def test_tree_runs_from_data_to_deployment(history: ProjectionRunner) -> None:
    lines = get_lineage(history.db, NAME, "v3.0.0").to_tree().splitlines()

    data = line_index(lines, "data:v2024-01")
    features = line_index(lines, "feature-engineering:fe-v1")
    experiment = line_index(lines, "experiment:exp-002")
    model = line_index(lines, "model:fraud-detection-v3.0.0  ◀ this version")
    deployment = line_index(lines, DEPLOYMENT)
    assert data < features < experiment < model < deployment


def test_tree_indents_each_level(history: ProjectionRunner) -> None:
    lines = get_lineage(history.db, NAME, "v3.0.0").to_tree().splitlines()

    def indent(text: str) -> int:
        line = lines[line_index(lines, text)]
        return line.index(text)

    assert lines[0] == "Lineage of fraud-detection-v3.0.0"
    assert indent("data:v2024-01") < indent("feature-engineering:fe-v1") < indent("experiment:exp-002")
    assert indent("experiment:exp-002") < indent("model:fraud-detection-v3.0.0") < indent(DEPLOYMENT)


def test_tree_shows_deployment_state(history: ProjectionRunner) -> None:
    tree = get_lineage(history.db, NAME, "v3.1.0").to_tree()

    assert f"{DEPLOYMENT}  (current since 2024-01-17T09:00:00+00:00)" in tree
    assert f"{DEPLOYMENT}  (deployed 2024-01-16T09:00:00+00:00, retired 2024-01-17T09:00:00+00:00)" in tree


def test_tree_lists_inputs_and_relatives(history: ProjectionRunner, models: Any) -> None:
    tree = get_lineage(history.db, NAME, "v3.1.0").to_tree()

    assert f"inputs ({len(models.features_v2)}): {', '.join(models.features_v2)}" in tree
    assert "parent: model:fraud-detection-v3.0.0" in tree
    assert "child: model:fraud-detection-v3.2.0" in tree
    assert "child: model:fraud-detection-v3.1.0" in tree


def test_tree_expands_shared_nodes_once(history: ProjectionRunner) -> None:
    tree = get_lineage(history.db, NAME, "v3.1.0").to_tree()

    assert tree.count("data:v2024-01") == 1
    assert tree.count("experiment:exp-003") == 1


def test_tree_expands_chainless_child_under_parent(history: ProjectionRunner) -> None:
    lines = get_lineage(history.db, NAME, "v3.2.0").to_tree().splitlines()

    parent = line_index(lines, "── model:fraud-detection-v3.1.0")
    child = line_index(lines, "child: model:fraud-detection-v3.2.0  ◀ this version")
    assert parent < child
    assert lines[child].index("child:") > lines[parent].index("model:")
    assert not any(line.startswith("model:fraud-detection-v3.2.0") for line in lines)


def test_tree_shows_whole_inputs_of_relatives(history: ProjectionRunner, models: Any) -> None:
    # v3.1.0 has columns that v3.0.0 lacks, and still shows all of them in v3.0.0's lineage.
    tree = get_lineage(history.db, NAME, "v3.0.0").to_tree()

    assert f"inputs ({len(models.features_v2)}): {', '.join(models.features_v2)}" in tree


def test_tree_shows_relatives_deployments(history: ProjectionRunner) -> None:
    lineage = get_lineage(history.db, NAME, "v3.2.0")

    assert "(current since 2024-01-17T09:00:00+00:00)" in lineage.to_tree()
    assert lineage.deployments() == []


def test_node_link_round_trips(history: ProjectionRunner) -> None:
    lineage = get_lineage(history.db, NAME, "v3.1.0")

    data = orjson.loads(orjson.dumps(lineage.to_node_link()))
    restored = nx.node_link_graph(data, edges="edges")

    assert restored.is_directed()
    assert graph_contents(restored) == graph_contents(lineage.graph)
    assert restored.graph["root"] == "model:fraud-detection-v3.1.0"


def test_json_matches_node_link(history: ProjectionRunner) -> None:
    lineage = get_lineage(history.db, NAME, "v3.1.0")

    assert orjson.loads(lineage.to_json()) == orjson.loads(orjson.dumps(lineage.to_node_link()))


def test_lineage_wraps_any_graph() -> None:
    graph = nx.DiGraph()
    graph.add_node("data:d1", kind="data", label="d1")
    graph.add_node("model:m-v1.0.0", kind="model", label="m-v1.0.0")
    graph.add_edge("data:d1", "model:m-v1.0.0", relation="trained")

    lineage = Lineage(graph, "model:m-v1.0.0")

    assert lineage.data_sources() == ["d1"]
    assert lineage.to_tree().splitlines() == [
        "Lineage of m-v1.0.0",
        "data:d1",
        "└── model:m-v1.0.0  ◀ this version",
    ]


# --- features -------------------------------------------------------------------


def test_models_using_column(history: ProjectionRunner, models: Any) -> None:
    shared = models.features_v1[0]
    only_v2 = models.features_v2[-1]

    assert models_using_feature(history.db, shared) == [
        "churn-model-v1.0.0",
        "fraud-detection-v3.0.0",
        "fraud-detection-v3.1.0",
        "fraud-detection-v3.2.0",
    ]
    assert models_using_feature(history.db, only_v2) == ["fraud-detection-v3.1.0", "fraud-detection-v3.2.0"]


def test_models_using_feature_set(history: ProjectionRunner) -> None:
    assert models_using_feature(history.db, "fe-v1") == ["fraud-detection-v3.0.0"]
    assert models_using_feature(history.db, "fe-v2") == ["fraud-detection-v3.1.0"]


def test_unknown_feature_is_invalid_input(history: ProjectionRunner) -> None:
    with pytest.raises(InvalidInput) as caught:
        models_using_feature(history.db, "fe-v9")

    message = str(caught.value)
    assert "'fe-v9'" in message
    assert "Did you mean" in message
    assert "'fe-v1'" in message
    assert "'fe-v2'" in message
    assert ".features()" in message
    assert caught.value.value == "fe-v9"


@pytest.mark.parametrize("feature", ["", "   ", None, 3])
def test_malformed_feature_is_invalid_input(history: ProjectionRunner, feature: Any) -> None:
    with pytest.raises(InvalidInput, match="invalid feature"):
        models_using_feature(history.db, feature)


def test_impact_of_feature_set_follows_children(history: ProjectionRunner) -> None:
    impact = feature_impact(history.db, "fe-v1")

    assert impact["feature"] == "fe-v1"
    assert impact["models"] == ["fraud-detection-v3.0.0", "fraud-detection-v3.1.0", "fraud-detection-v3.2.0"]
    assert impact["deployments"] == [
        {
            "deployment": "fraud-detection/production",
            "current": True,
            "serving": "fraud-detection-v3.0.0",
            "models": ["fraud-detection-v3.0.0", "fraud-detection-v3.1.0"],
        }
    ]


def test_impact_reports_past_deployments(history: ProjectionRunner, models: Any) -> None:
    impact = feature_impact(history.db, models.features_v2[-1])

    assert impact["models"] == ["fraud-detection-v3.1.0", "fraud-detection-v3.2.0"]
    assert impact["deployments"] == [
        {
            "deployment": "fraud-detection/production",
            "current": False,
            "serving": None,
            "models": ["fraud-detection-v3.1.0"],
        }
    ]


def test_impact_of_unknown_feature_raises(history: ProjectionRunner) -> None:
    with pytest.raises(InvalidInput, match="unknown feature 'no_such_column'"):
        feature_impact(history.db, "no_such_column")


def test_signature_change_replaces_inputs(
    registry: ModelRegistry, history: ProjectionRunner, models: Any, clock: Any
) -> None:
    clock.now = START + dt.timedelta(days=20)
    registry.set_model_signature(model="churn-model-v1.0.0", inputs={"tenure_months": "int", "plan": "str"})
    history.catch_up()

    assert get_lineage(history.db, CHURN, "v1.0.0").features() == ["tenure_months", "plan"]
    assert models_using_feature(history.db, "tenure_months") == ["churn-model-v1.0.0"]
    assert "churn-model-v1.0.0" not in models_using_feature(history.db, models.features_v1[0])
    assert feature_impact(history.db, "tenure_months") == {
        "feature": "tenure_months",
        "models": ["churn-model-v1.0.0"],
        "deployments": [],
    }


def test_signature_change_forgets_unused_columns(
    registry: ModelRegistry, history: ProjectionRunner, clock: Any
) -> None:
    clock.now = START + dt.timedelta(days=20)
    registry.set_model_signature(model="churn-model-v1.0.0", inputs={"tenure_months": "int"})
    history.catch_up()
    clock.now = START + dt.timedelta(days=21)
    registry.set_model_signature(model="churn-model-v1.0.0", inputs={"plan": "str"})
    history.catch_up()

    with pytest.raises(InvalidInput, match="unknown feature 'tenure_months'"):
        models_using_feature(history.db, "tenure_months")


# --- rebuilds -------------------------------------------------------------------


def test_rebuild_matches_one_catch_up(history: ProjectionRunner) -> None:
    before = graph_contents(load_graph(history.db))

    history.rebuild()

    assert graph_contents(load_graph(history.db)) == before


def test_rebuild_matches_step_by_step(
    registry: ModelRegistry, clock: Any, models: Any, runner: ProjectionRunner
) -> None:
    build_history(registry, clock, models, after_step=runner.catch_up)
    incremental = graph_contents(load_graph(runner.db))

    runner.rebuild()

    assert graph_contents(load_graph(runner.db)) == incremental
    assert len(incremental[0]) > 0


def test_small_batches_give_same_graph(
    registry: ModelRegistry, clock: Any, models: Any, history: ProjectionRunner, tmp_path: Path
) -> None:
    paged = ProjectionRunner(
        registry._store.recorder,
        registry._store.mapper,
        tmp_path / "paged.sqlite3",
        [LineageProjection()],
        batch_size=1,
    )
    try:
        paged.catch_up()
        assert graph_contents(load_graph(paged.db)) == graph_contents(load_graph(history.db))
    finally:
        paged.close()


def test_rebuild_is_idempotent_for_queries(history: ProjectionRunner) -> None:
    first = get_lineage(history.db, NAME, "v3.1.0").to_json()

    history.rebuild()
    history.rebuild()

    assert get_lineage(history.db, NAME, "v3.1.0").to_json() == first
