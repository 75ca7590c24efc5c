"""Charts for the class report, as inline SVG made with matplotlib (no pyplot, no display):
the page works offline and as an e-mail attachment."""

from __future__ import annotations

import io
import re


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: no XML declaration or doctype


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "grader"  # stable ids: identical inputs, identical files
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=96)


def score_histogram(scores: list[float], max_score: float) -> str:
    figure = _figure(6.4, 2.6)
    axes = figure.add_subplot()
    bins = list(range(0, int(max_score) + 2))
    axes.hist(scores, bins=bins, color="#3b6ea8", edgecolor="white", align="left")
    axes.set_xlabel("score")
    axes.set_ylabel("students")
    axes.set_xlim(-0.5, max_score + 0.5)
    _whole_numbers(axes.xaxis)
    _whole_numbers(axes.yaxis)
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title("Score distribution", loc="left", fontsize=11)
    return _svg(figure)


def mistake_bars(counts: list[tuple[str, int]], students: int) -> str:
    """How many students made each mistake (step: diagnosis), most common first."""
    figure = _figure(6.4, 0.35 * max(3, len(counts)) + 0.8)
    axes = figure.add_subplot()
    labels = [label for label, _ in counts][::-1]
    values = [count for _, count in counts][::-1]
    bars = axes.barh(labels, values, color="#c0504d")
    axes.bar_label(bars, labels=[f"{v} ({100 * v / max(students, 1):.0f}%)" for v in values], padding=3, fontsize=8)
    axes.set_xlabel("students")
    _whole_numbers(axes.xaxis)
    axes.tick_params(axis="y", labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title("Mistakes by step", loc="left", fontsize=11)
    return _svg(figure)


def _whole_numbers(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def strip_scripts(svg: str) -> str:
    """Matplotlib's SVG holds no script, but be sure: nothing executable goes into the page."""
    return re.sub(r"<script.*?</script>", "", svg, flags=re.S)
