"""Charts for the bench report (matplotlib, PNG): per bench, its latency
percentiles, its throughputs and its quality measures, each beside the
baselines the same run measured (drawn in grey), read from the JSON as the
report's figures are. matplotlib is imported only when a chart is drawn."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cli.bench_report import leaves, number

PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")
THROUGHPUT = re.compile(r"(per_s|per_second|qps|rps)$")
QUALITY = re.compile(r"(ndcg|recall|overlap|precision|correct_citation|abstention_rate)")
BASELINE = re.compile(r"(bare|reference|baseline|per_call|raw|text|alone|floor)")
T = TypeVar("T")
MAX_SERIES = 14  # more bars than this in one panel cannot be read
ACCENT, GREY = "#2b6cb0", "#a0aec0"
PERCENTILE_SHADES = ("#2b6cb0", "#63b3ed", "#bee3f8")


@dataclass
class Panels:
    """What one bench's chart shows, label → values."""

    latency: dict[str, tuple[float, ...]] = field(default_factory=dict)
    throughput: dict[str, float] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.latency or self.throughput or self.quality)


def panels(result: Mapping[str, Any]) -> Panels:
    """The chartable figures of a result: every dict with p50/p95/p99 in ms, every
    throughput leaf and every quality measure in [0, 1] (`goals` left out); a
    percentile the script did not report is NaN (no bar)."""
    found = Panels()
    figures = [(path, value) for path, value in leaves(result) if not path.startswith("goals.")]
    by_parent: dict[str, dict[str, float]] = {}
    for path, value in figures:
        parent, _, leaf = path.rpartition(".")
        if leaf in PERCENTILES:
            by_parent.setdefault(parent or leaf, {})[leaf] = value
        elif THROUGHPUT.search(leaf):
            found.throughput[path] = value
        elif QUALITY.search(leaf) and 0 <= value <= 1:
            found.quality[path] = value
    for parent, values in by_parent.items():
        if "p50_ms" in values:
            found.latency[parent] = tuple(values.get(p, math.nan) for p in PERCENTILES)
    found.latency = _first(found.latency)
    found.throughput = _first(found.throughput)
    found.quality = _first(found.quality)
    return found


def _first(items: dict[str, T]) -> dict[str, T]:
    return dict(list(items.items())[:MAX_SERIES])


def draw(title: str, result: Mapping[str, Any], path: Path) -> bool:
    """Writes `result`'s chart to `path`; False (and no file) when it has nothing
    to chart."""
    shown = panels(result)
    if not shown:
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    kinds = [kind for kind in ("latency", "throughput", "quality") if getattr(shown, kind)]
    heights = [max(1.6, 0.34 * len(getattr(shown, kind)) + 0.9) for kind in kinds]
    figure, axes = plt.subplots(
        len(kinds),
        1,
        figsize=(8.5, sum(heights) + 0.5),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for axis, kind in zip(axes[:, 0], kinds, strict=True):
        if kind == "latency":
            _latency(axis, shown.latency)
        else:
            values = getattr(shown, kind)
            unit = "per second" if kind == "throughput" else "share, 0 to 1"
            _bars(axis, values, unit)
        axis.set_title(kind, loc="left", fontsize=10)
    figure.suptitle(title, x=0.01, ha="left", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return True


def _latency(axis: Any, series: Mapping[str, Sequence[float]]) -> None:
    labels = list(series)
    height = 0.8 / len(PERCENTILES)
    for i, shade in enumerate(PERCENTILE_SHADES):
        positions = [row + (i - 1) * height for row in range(len(labels))]
        values = [series[label][i] for label in labels]
        colours = [GREY if BASELINE.search(label) and i == 0 else shade for label in labels]
        axis.barh(positions, values, height=height, color=colours)
    _label_rows(axis, labels)
    axis.set_xlabel("milliseconds (grey p50: a baseline)")
    known = [value for values in series.values() for value in values if not math.isnan(value)]
    if max(known) / max(min(known), 1e-9) > 50:
        axis.set_xscale("log")
    from matplotlib.patches import Patch

    keys = [
        Patch(color=shade, label=name.removesuffix("_ms"))
        for name, shade in zip(PERCENTILES, PERCENTILE_SHADES, strict=True)
    ]
    axis.legend(
        handles=keys, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False
    )


def _bars(axis: Any, series: Mapping[str, float], unit: str) -> None:
    labels = list(series)
    colours = [GREY if BASELINE.search(label) else ACCENT for label in labels]
    axis.barh(range(len(labels)), [series[label] for label in labels], color=colours)
    for row, label in enumerate(labels):
        axis.annotate(
            f" {number(series[label])}",
            (series[label], row),
            va="center",
            fontsize=7,
        )
    _label_rows(axis, labels)
    axis.set_xlabel(f"{unit} (grey: a baseline)")


def _label_rows(axis: Any, labels: Sequence[str]) -> None:
    axis.set_yticks(range(len(labels)))
    axis.set_yticklabels([_short(label) for label in labels], fontsize=7)
    axis.invert_yaxis()


def _short(label: str, width: int = 48) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1) :]
