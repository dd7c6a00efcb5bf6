"""Input and output schemas: inference from examples and compatibility checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry.errors import InvalidSignature
from registry.records import Signature

TYPE_NAMES = ("float", "int", "bool", "str", "datetime", "category")

_ALIASES = {
    "float": "float", "float16": "float", "float32": "float", "float64": "float", "double": "float",
    "int": "int", "int8": "int", "int16": "int", "int32": "int", "int64": "int", "integer": "int",
    "uint8": "int", "uint16": "int", "uint32": "int", "uint64": "int", "long": "int",
    "bool": "bool", "boolean": "bool",
    "str": "str", "string": "str", "object": "str",
    "datetime": "datetime", "datetime64[ns]": "datetime", "datetime64[us]": "datetime",
    "category": "category",
}  # fmt: skip


def normalize_type(type_name: object, *, column: str) -> str:
    """Map a dtype or type name, such as ``float64`` or ``int``, to a signature type."""
    text = getattr(type_name, "__name__", None) or str(type_name)
    text = text.lower()
    if text.startswith("datetime64"):
        return "datetime"
    try:
        return _ALIASES[text]
    except KeyError:
        raise InvalidSignature(
            f"invalid type {type_name!r} for column {column!r}: expected one of {', '.join(TYPE_NAMES)} "
            "or a numpy dtype name such as 'float64'",
            value=type_name,
        ) from None


def check_schema(schema: object, *, argument: str) -> dict[str, str]:
    """Validate a user-given ``{column: type}`` mapping and normalise its types."""
    if not isinstance(schema, Mapping):
        raise InvalidSignature(
            f"invalid {argument} {schema!r}: expected a mapping of column name to type, "
            "such as {'amount': 'float'}",
            value=schema,
        )
    checked: dict[str, str] = {}
    for column, type_name in schema.items():
        if not isinstance(column, str) or not column:
            raise InvalidSignature(
                f"invalid column name {column!r} in {argument}: expected a non-empty string",
                value=column,
            )
        checked[column] = normalize_type(type_name, column=column)
    return checked


def infer_signature(
    model: Any,
    input_example: Any = None,
    features: Sequence[str] | Mapping[str, str] | None = None,
) -> Signature:
    """Infer a signature from an input example, else from the metadata's features.

    A pandas DataFrame gives names and dtypes; a 2-D array gives dtypes, with
    names from ``features`` when they are given, else ``x0``, ``x1``, ....
    Without either, the column names a fitted scikit-learn or XGBoost model
    keeps in ``feature_names_in_`` are used, typed as floats.
    Outputs come from running the model's ``predict`` on the first rows of
    the example, when there is one.
    """
    inputs: dict[str, str] = {}
    if input_example is not None:
        inputs = _inputs_from_example(input_example, features)
    elif isinstance(features, Mapping):
        inputs = check_schema(features, argument="metadata['features']")
    elif features:
        # Names alone carry no type; models trained on numeric matrices take floats.
        inputs = {str(name): "float" for name in features}
    else:
        inputs = _inputs_from_fitted_model(model)

    outputs: dict[str, str] = {}
    if input_example is not None and hasattr(model, "predict"):
        outputs = _outputs_from_prediction(model, input_example)
    return Signature(inputs=inputs, outputs=outputs)


def _inputs_from_fitted_model(model: Any) -> dict[str, str]:
    # scikit-learn and XGBoost's scikit-learn API set feature_names_in_ when fitted on a DataFrame.
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return {}
    return {str(name): "float" for name in names}


def _inputs_from_example(example: Any, features: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    columns = getattr(example, "columns", None)
    dtypes = getattr(example, "dtypes", None)
    if columns is not None and dtypes is not None:
        return {str(c): normalize_type(str(t), column=str(c)) for c, t in zip(columns, dtypes, strict=True)}
    if isinstance(example, Mapping):
        return {str(k): normalize_type(type(_first(v)).__name__, column=str(k)) for k, v in example.items()}
    shape = getattr(example, "shape", None)
    dtype = getattr(example, "dtype", None)
    if shape is not None and dtype is not None and len(shape) == 2:
        names = list(features) if features is not None else []
        if names and len(names) != shape[1]:
            raise InvalidSignature(
                f"input example has {shape[1]} columns but metadata['features'] names {len(names)}; "
                "pass matching features or a DataFrame",
                value=shape,
            )
        names = names or [f"x{i}" for i in range(shape[1])]
        type_name = normalize_type(str(dtype), column=names[0] if names else "x0")
        return {str(name): type_name for name in names}
    raise InvalidSignature(
        f"cannot infer a signature from an input example of type {type(example).__name__}: "
        "pass a pandas DataFrame, a 2-D numpy array or a dict of columns",
        value=type(example).__name__,
    )


def _first(values: Any) -> Any:
    if isinstance(values, (list, tuple)) and values:
        return values[0]
    return values


def _outputs_from_prediction(model: Any, example: Any) -> dict[str, str]:
    if hasattr(example, "iloc"):
        head = example.iloc[:5]
    elif isinstance(example, Mapping):
        head = example
    else:
        head = example[:5]
    try:
        prediction = model.predict(head)
    except Exception as error:  # noqa: BLE001 - any failure means the example does not fit the model
        raise InvalidSignature(
            f"the model's predict() failed on the input example ({type(error).__name__}: {error}); "
            "pass an example with the columns the model was trained on",
            value=type(example).__name__,
        ) from error
    dtype = getattr(prediction, "dtype", None)
    return {"prediction": normalize_type(str(dtype), column="prediction") if dtype is not None else "str"}


def breaking_changes(current: Signature, candidate: Signature) -> list[str]:
    """Return how ``candidate`` breaks ``current``: removed inputs and changed types."""
    problems = []
    removed = sorted(set(current.inputs) - set(candidate.inputs))
    if removed:
        problems.append(f"inputs removed: {', '.join(removed)}")
    for column in sorted(set(current.inputs) & set(candidate.inputs)):
        if current.inputs[column] != candidate.inputs[column]:
            problems.append(
                f"input {column!r} changed type from {current.inputs[column]} to {candidate.inputs[column]}"
            )
    return problems
