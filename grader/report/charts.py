"""Charts for the class report, as inline SVG made with matplotlib (no pyplot, no display):
the page works offline and as an e-mail attachment. Text stays text (`svg.fonttype: none`),
so it can be searched, copied and read by a screen reader, and every chart and bar carries a
<title> that browsers show on hover and assistive technology reads."""

from __future__ import annotations

import io
import re

# Stable ids (identical inputs, identical files) and real <text> elements, set per figure
# through rc_context rather than in matplotlib's global settings.
SVG_SETTINGS = {"svg.hashsalt": "grader", "svg.fonttype": "none"}


def _svg(figure, title: str, bar_titles: dict[str, str] | None = None) -> str:
    from xml.sax.saxutils import escape  # here: it imports urllib, http and ssl (~20 ms), for a chart

    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_SETTINGS):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg"):]  # inline: no XML declaration or doctype
    # The chart's accessible name, first child of <svg>; then one <title> per bar (its group
    # was given the id bar_titles names).
    text = re.sub(r"(<svg\b[^>]*?)>", lambda m: f'{m.group(1)} role="img">\n <title>{escape(title)}</title>',
                  text, count=1)
    for gid, label in (bar_titles or {}).items():
        text = text.replace(f'<g id="{gid}">', f'<g id="{gid}">\n  <title>{escape(label)}</title>', 1)
    return text


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=96)


def score_histogram(scores: list[float], max_score: float) -> str:
    figure = _figure(6.4, 2.6)
    axes = figure.add_subplot()
    bins = list(range(0, int(max_score) + 2))
    counts, _, patches = axes.hist(scores, bins=bins, color="#3b6ea8", edgecolor="white", align="left")
    titles = {}
    for i, (count, patch) in enumerate(zip(counts, patches)):
        patch.set_gid(f"score-bar-{i}")
        titles[f"score-bar-{i}"] = f"score {bins[i]}: {int(count)} student{'s' if count != 1 else ''}"
    axes.set_xlabel("score")
    axes.set_ylabel("students")
    axes.set_xlim(-0.5, max_score + 0.5)
    _whole_numbers(axes.xaxis)
    _whole_numbers(axes.yaxis)
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title("Score distribution", loc="left", fontsize=11)
    return _svg(figure, f"Score distribution of {len(scores)} graded notebooks (out of {max_score:g})", titles)


def mistake_bars(counts: list[tuple[str, int]], students: int) -> str:
    """How many students made each mistake (step: diagnosis), most common first."""
    figure = _figure(6.4, 0.35 * max(3, len(counts)) + 0.8)
    axes = figure.add_subplot()
    labels = [label for label, _ in counts][::-1]
    values = [count for _, count in counts][::-1]
    bars = axes.barh(labels, values, color="#c0504d")
    shares = [f"{v} ({100 * v / max(students, 1):.0f}%)" for v in values]
    titles = {}
    for i, (bar, label, value) in enumerate(zip(bars, labels, values)):
        bar.set_gid(f"mistake-bar-{i}")
        titles[f"mistake-bar-{i}"] = (f"{label}: {value} student{'s' if value != 1 else ''} "
                                      f"({100 * value / max(students, 1):.0f}%)")
    axes.bar_label(bars, labels=shares, padding=3, fontsize=8)
    axes.set_xlabel("students")
    _whole_numbers(axes.xaxis)
    axes.tick_params(axis="y", labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title("Mistakes by step", loc="left", fontsize=11)
    return _svg(figure, f"Mistakes by step: the {len(counts)} most common, in students", titles)


def _whole_numbers(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def strip_scripts(svg: str) -> str:
    """Matplotlib's SVG holds no script, but be sure: nothing executable goes into the page."""
    return re.sub(r"<script.*?</script>", "", svg, flags=re.S)
