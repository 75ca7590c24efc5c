"""An nbconvert preprocessor that makes a student's notebook safe to render and attaches the
grader's findings to the cells they point at (see notebook_html)."""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor

# The only key our template reads from a cell's metadata. Whatever the student's notebook
# holds there (tags, widget views, a forged copy of this key) is dropped first.
KEY = "dropout_grader"


class FindingsPreprocessor(Preprocessor):
    """Reads `resources["grader"]["annotations"]` (dicts with a 0-based `cell` and 1-based
    `line`) and writes, for each cell, `metadata.dropout_grader = {"index", "annotations",
    "lines"}`; strips notebook and output metadata that could load files or run code."""

    def preprocess(self, nb, resources):
        grader = resources.get("grader", {})
        by_cell: dict[int, list[dict]] = {}
        for annotation in grader.get("annotations", []):
            if annotation.get("cell") is not None:
                by_cell.setdefault(annotation["cell"], []).append(annotation)
        # Widget state and the like would be emitted as <script> data blocks; the language
        # info picks a lexer by name; neither is the student's to choose here.
        nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                       "language_info": {"name": "python"}}
        for index, cell in enumerate(nb.cells):
            notes = by_cell.get(index, [])
            cell.metadata = {KEY: {"index": index, "annotations": notes,
                                   "lines": sorted({a["line"] for a in notes
                                                    if a.get("line") and a["verdict"] != "ok"})}}
            cell.pop("attachments", None)  # markdown images by reference: not rendered
            for output in cell.get("outputs", []):
                # `filenames` / `svg_filename` make the template emit <img src=...> pointing at
                # a path or URL of the student's choosing; images are shown from their data.
                output.metadata = {k: v for k, v in output.get("metadata", {}).items()
                                   if k in ("width", "height") and isinstance(v, (int, float))}
                output.pop("svg_filename", None)
                data = output.get("data", {})
                for mime in [m for m in data if m.startswith("application/vnd.jupyter.widget")
                             or m == "application/javascript"]:
                    del data[mime]
        return nb, resources


# What markdown cells and HTML outputs may keep: text structure and tables, links to web pages,
# images carried inside the notebook. No script, style, frame, form, event handler, or any URL
# that the page would load by itself (only data: images; links load nothing until clicked).
ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "q", "s",
    "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul", "var"})
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto", "data"})


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name in ("class", "title", "align", "colspan", "rowspan"):
        return True
    if tag == "a" and name == "href":
        return not value.lower().startswith("data:")
    if tag == "img" and name in ("alt", "width", "height"):
        return True
    if tag == "img" and name == "src":  # only pictures carried in the notebook itself
        return value.startswith("data:image/") and not value.startswith("data:image/svg")
    return False


def sanitize_html(html) -> str:
    """The `clean_html` filter our template uses instead of nbconvert's own, whose allow-list
    escapes headings and paragraphs (a course's instructions would show as raw tags)."""
    import bleach

    html = html.decode() if isinstance(html, bytes) else str(html)
    return bleach.clean(html, tags=ALLOWED_TAGS, attributes=_allowed_attribute,
                        protocols=ALLOWED_PROTOCOLS, strip=True, strip_comments=True)
