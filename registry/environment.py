"""The packages a model needs, at the versions installed when it was registered."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
from typing import Any

from registry.records import Environment

# Packages that a framework's saved models need besides the framework itself.
_COMPANIONS = {
    "scikit-learn": ("numpy", "scipy", "joblib"),
    "xgboost": ("numpy", "scipy"),
}


def describe_environment(model: Any, artifact_format: str) -> Environment:
    """Return the Python version and the installed versions of the model's packages."""
    distributions = set()
    for module in _modules_of(model):
        distributions.update(_distributions_of(module))
    for name in list(distributions):
        distributions.update(_COMPANIONS.get(name, ()))
    if artifact_format == "skops":
        distributions.add("skops")

    requirements = {}
    for name in sorted(distributions):
        version = _installed_version(name)
        if version is not None:
            requirements[name] = version
    return Environment(python_version=platform.python_version(), requirements=requirements)


@functools.lru_cache(maxsize=None)
def _installed_version(distribution: str) -> str | None:
    """Return the installed version of ``distribution``, or None when it is not installed.

    Reading a package's metadata from disk costs milliseconds, so each is read
    once per process. A package upgraded while the process runs keeps the version read first.
    """
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def requirements_text(environment: Environment) -> str:
    """Render ``environment`` as the lines of a pip requirements file."""
    lines = [f"# python_version == {environment.python_version}"]
    lines += [f"{name}=={version}" for name, version in sorted(environment.requirements.items())]
    return "\n".join(lines) + "\n"


def _modules_of(model: Any) -> set[str]:
    """Return the top-level modules of the model's class and of its nested estimators."""
    modules = {type(model).__module__.split(".")[0]}
    get_params = getattr(model, "get_params", None)
    if callable(get_params):
        try:
            params = get_params(deep=True)
        except Exception:  # noqa: BLE001 - third-party get_params may need arguments; skip nesting
            params = {}
        for value in params.values():
            if hasattr(value, "fit") and not isinstance(value, type):
                modules.add(type(value).__module__.split(".")[0])
    return modules - {"builtins", "__main__"}


@functools.lru_cache(maxsize=1)
def _installed_distributions() -> dict[str, list[str]]:
    # Scanning the installed packages takes tens of milliseconds, so do it once.
    return dict(importlib.metadata.packages_distributions())


def _distributions_of(module: str) -> list[str]:
    return list(_installed_distributions().get(module, []))
