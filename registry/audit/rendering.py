"""Renderings of an audit report: Markdown and HTML from Jinja2 templates, JSON, and atomic file writes.

The HTML page is self-contained: inline CSS and an inline SVG chart that
``lay_out_metrics_chart`` lays out here, with no scripts and nothing loaded from
elsewhere. Its template escapes every value it inserts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from registry import errors
from registry.audit.facts import FAILED, NOT_APPLICABLE, PASSED, MetricPoint, iso
from registry.files import write_atomically
from registry.metadata import FRACTION_METRICS

if TYPE_CHECKING:
    from registry.audit.facts import AuditReport

# Accepted format names and the format each one means.
FORMATS = {"md": "md", "markdown": "md", "html": "html", "json": "json"}


def render(report: AuditReport, format: str) -> str:
    """Return ``report`` in ``format``: ``md`` (or ``markdown``), ``html`` or ``json``."""
    chosen = check_format(format)
    if chosen == "html":
        return render_html(report)
    if chosen == "json":
        return report.to_json()
    return render_markdown(report)


def render_markdown(report: AuditReport) -> str:
    return _templates().get_template("audit.md.j2").render(report=report)


def render_html(report: AuditReport) -> str:
    return (
        _templates()
        .get_template("audit.html.j2")
        .render(report=report, chart=lay_out_metrics_chart(report.performance))
    )


def write(report: AuditReport, target: Path, format: str | None) -> Path:
    """Write ``report`` to ``target`` through a temporary file and a rename, and return ``target``."""
    chosen = check_format(format if format is not None else _format_of_suffix(target))
    data = render(report, chosen).encode("utf-8")
    try:
        write_atomically(target, data)
    except OSError as error:
        raise errors.InvalidInput(
            f"cannot write the audit report to {str(target)!r}: {error.strerror or error}; "
            "pass a file path in a folder you can write to",
            value=str(target),
        ) from error
    return target


def check_format(format: object) -> str:
    """Return the canonical name of a report format, or raise ``InvalidInput``."""
    if isinstance(format, str) and format.lower() in FORMATS:
        return FORMATS[format.lower()]
    raise errors.InvalidInput(
        f"invalid audit report format {format!r}: expected 'md' (or 'markdown'), 'html' or 'json'",
        value=format,
    )


def _format_of_suffix(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise errors.InvalidInput(
        f"cannot tell the audit report format from {str(path)!r}: expected a .md, .html or .json file, "
        "or pass format='md', 'html' or 'json'",
        value=str(path),
    )


# The color of each metric's line in the chart, which shows only fractions between 0 and 1.
METRIC_COLORS = {
    "accuracy": "#1f77b4",
    "precision": "#ff7f0e",
    "recall": "#2ca02c",
    "roc_auc": "#d62728",
    "f1_score": "#9467bd",
}

# Above this many points, only every n-th x label is drawn, so labels do not overlap.
MAX_X_LABELS = 12


@dataclass(frozen=True)
class ChartSeries:
    """One metric's line: SVG coordinates and a tooltip for each point."""

    metric: str
    color: str
    points: list[tuple[float, float, str]]

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in self.points)


@dataclass(frozen=True)
class Chart:
    """The geometry of the metrics chart in SVG user units, which the HTML template draws."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    y_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str, str]]
    """The x position, version and date of each labelled point."""
    series: list[ChartSeries]


def lay_out_metrics_chart(points: Sequence[MetricPoint], width: int = 880, height: int = 320) -> Chart | None:
    """Lay out one line per fraction metric across ``points``, evenly spaced in time order.

    Returns None when no point has a fraction metric. The y axis spans the
    values with a margin, within 0 to 1.
    """
    values = [p.metrics[m] for p in points for m in FRACTION_METRICS if m in p.metrics]
    if not values:
        return None
    margin = max((max(values) - min(values)) * 0.1, 0.01)
    ticks, decimals = _axis_ticks(max(0.0, min(values) - margin), min(1.0, max(values) + margin))
    low, high = ticks[0], ticks[-1]
    left, right, top, bottom = 64, width - 24, 20, height - 56

    def x_of(index: int) -> float:
        return left + (index + 0.5) * (right - left) / len(points)

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    step = max(1, math.ceil(len(points) / MAX_X_LABELS))
    labels = [(x_of(i), p.version, p.at.strftime("%Y-%m-%d")) for i, p in enumerate(points) if i % step == 0]
    series = []
    for metric in FRACTION_METRICS:
        coordinates = [
            (
                x_of(i),
                y_of(p.metrics[metric]),
                f"{metric} {p.metrics[metric]:.4g}: {p.version}, {p.label} {iso(p.at)}",
            )
            for i, p in enumerate(points)
            if metric in p.metrics
        ]
        if coordinates:
            series.append(ChartSeries(metric, METRIC_COLORS.get(metric, "#555555"), coordinates))
    y_ticks = [(y_of(tick), f"{tick:.{decimals}f}") for tick in ticks]
    return Chart(width, height, left, right, top, bottom, y_ticks, labels, series)


def _axis_ticks(low: float, high: float) -> tuple[list[float], int]:
    """Return round tick values that cover ``low`` to ``high`` in about four steps, and their decimals.

    The step is 1, 2, 2.5 or 5 times a power of ten, as chart axes usually use.
    """
    rough = (high - low) / 4
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(power * m for m in (1, 2, 2.5, 5, 10) if power * m >= rough - 1e-12)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    ticks = [round(index * step, 10) for index in range(first, last + 1)]
    decimals = next(d for d in range(10) if abs(round(step, d) - step) < 1e-9)
    return ticks, decimals


def _markdown_cell(value: object) -> str:
    """Return ``value`` as text that stays inside one Markdown table cell and shows no raw HTML."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.replace("|", "\\|").split())


def _number(value: float) -> str:
    return f"{value:.4g}"


@functools.cache
def _templates() -> jinja2.Environment:
    """Return the template environment; templates named ``*.html.j2`` escape every value they insert."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("registry", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(iso=iso, cell=_markdown_cell, number=_number)
    environment.globals.update(PASSED=PASSED, FAILED=FAILED, NOT_APPLICABLE=NOT_APPLICABLE)
    return environment
