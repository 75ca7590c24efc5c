"""Text that came from a submission, made harmless and bounded for every report format.

Everything a student controls (file and folder names, printed output, exception text and class
names, docstrings, code lines) reaches the reports through `bounded`, which caps each field and
removes what no format should carry: terminal escape sequences, C0 and C1 control characters,
bidirectional overrides, lone surrogates and Unicode noncharacters. Each format then applies
its own syntax on top, from this module only:

- `log` for the terminal, which is the CI log: a line cannot start a GitHub workflow command
  (`::cmd::` after leading blanks, or `##[cmd]` anywhere, as the runner parses them);
- `markdown` for Markdown feedback and the GitHub step summary: no link, image, HTML, emphasis,
  code span or table cell boundary can be formed;
- `xml` for junit.xml: only characters XML 1.0 allows;
- HTML pages rely on Jinja2's autoescaping of the already cleaned text.

The caps keep a hostile notebook from making any report large: a 5 MB exception class name
becomes a few thousand characters and says how much was cut.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from dataclasses import replace

from dropout_grader.results import Finding, ResultView, RunResult, SubmissionResult

# Caps, in characters, on each student-derived field of the result model.
NAME_CHARS = 200  # student id
PATH_CHARS = 500  # the notebook's path
MESSAGE_CHARS = 2000  # a finding's message (it may quote an exception)
CODE_CHARS = 300  # the line a finding points at
OUTPUT_CHARS = 64 * 1024  # what the student's code printed
SOURCE_CHARS = 64 * 1024  # one cell's source, kept for excerpts
SOURCE_LINE_CHARS = 500  # one line of that source

# Terminal escape sequences, removed whole so no stray "[31m" is left: CSI (ESC [ or the C1
# byte 0x9b), OSC (ESC ] or 0x9d, ended by BEL or ST), DCS/SOS/PM/APC strings, and the short
# two-character escapes.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?")
# What remains forbidden after that: C0 controls but tab and newline, DEL, C1 controls, the
# bidirectional embeddings, overrides and isolates ("Trojan Source"), lone surrogates and the
# noncharacters (U+FDD0..U+FDEF and U+xFFFE/U+xFFFF of every plane; XML forbids U+FFFE/U+FFFF).
_FORBIDDEN_BMP = ("\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                  "\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff")
_FORBIDDEN = re.compile(f"[{_FORBIDDEN_BMP}]")
_NONCHARACTERS_ASTRAL = re.compile(
    "[" + "".join(f"{chr(plane * 0x10000 + 0xfffe)}{chr(plane * 0x10000 + 0xffff)}" for plane in range(1, 17)) + "]")
_LINE_BREAKS = re.compile("\r\n|[\r\u2028\u2029\x85\x0b\x0c]")
# Anything `clean` might change but length (any astral character sends the text the slow way,
# since a set of 32 astral characters is slow to search): most text has none of it and is
# returned as is, so cleaning a class costs milliseconds, and cleaning twice one search.
_WORK = re.compile(f"[{_FORBIDDEN_BMP}\r\u2028\u2029\U00010000-\U0010ffff]")
# XML 1.0's Char production, inverted: what junit.xml must never contain, whatever its origin.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Markdown syntax that could form a link or image (both need "["), an autolink or raw HTML
# ("<"), an entity ("&"), emphasis, strike-through, a code span or a table cell boundary inside
# a line, or a heading at its start. Every ASCII punctuation character may be backslash-escaped
# in CommonMark; these are the ones that matter, so the raw .md file stays readable.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>&|~#])")
_FENCE = re.compile(r"`{3,}|~{3,}")


def cap(text: str, limit: int) -> str:
    """At most `limit` characters, saying how much was cut. Idempotent: text already within
    the limit (a capped text included) is returned as is."""
    if len(text) <= limit:
        return text
    marker = f" … [cut: {len(text):,} characters in all]"
    return text[:max(0, limit - len(marker))] + marker


def clean(text: str, limit: int, *, one_line: bool = False) -> str:
    """Capped, without escape sequences or forbidden characters; line breaks of every kind
    become "\\n" (or a space when `one_line`)."""
    text = str(text)
    if len(text) <= limit and not _WORK.search(text) and not (one_line and ("\n" in text or "\t" in text)):
        return text
    text = cap(text, limit)
    text = _ESCAPES.sub("", text)
    text = _LINE_BREAKS.sub("\n", text)
    text = _FORBIDDEN.sub(lambda m: "\ufffd" if "\ud800" <= m.group() <= "\udfff" else "", text)
    text = _NONCHARACTERS_ASTRAL.sub("", text)
    if one_line:
        text = text.replace("\n", " ").replace("\t", " ")
    return text


def _is_blank(char: str) -> bool:
    """What the Actions runner's TrimStart could skip before "::", and a little more."""
    return char.isspace() or unicodedata.category(char) in ("Cf", "Zs", "Zl", "Zp", "Cc")


def log(text: str) -> str:
    """Text for a log a CI runner parses (the terminal in CI): no line of it is a workflow
    command. A line whose first non-blank characters are "::" gets a full-width colon in front
    of its first colon's place; "##[" anywhere becomes "##［". Both still read the same."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        start = 0
        while start < len(line) and _is_blank(line[start]):
            start += 1
        if line.startswith("::", start):
            line = line[:start] + "\uff1a" + line[start + 1:]
        lines[i] = line.replace("##[", "##\uff3b")
    return "\n".join(lines)


def markdown(text: str) -> str:
    """One line of inert Markdown text (for a table cell, a heading, a list item)."""
    return _MARKDOWN.sub(r"\\\1", clean(text, len(text) + 1, one_line=True))


def fence_safe(text: str) -> str:
    """Text for the inside of a ``` code fence: no run of three backticks or tildes can close
    it (a zero-width space goes between each pair of the run)."""
    return _FENCE.sub(lambda m: "\u200b".join(m.group()), text)


def xml(text: str) -> str:
    """Characters XML 1.0 can hold, whatever the escaping; the rest dropped."""
    return _NOT_XML.sub("", str(text))


def source(text: str) -> str:
    """A cell's source, bounded line by line and as a whole, so excerpts stay readable."""
    cleaned = clean(text, SOURCE_CHARS)
    lines = cleaned.split("\n")
    if all(len(line) <= SOURCE_LINE_CHARS for line in lines):
        return cleaned
    return "\n".join(cap(line, SOURCE_LINE_CHARS) for line in lines)


def identifier(text: str, limit: int = NAME_CHARS) -> str:
    """A student id as reports show it: one clean line of at most `limit` characters. An id
    that cleaning or the cap had to change ends with " ~" and 16 hex digits of the original's
    sha256, so two ids never become one (two long ids sharing a prefix, or ids differing only
    in control characters), and reports can key files on it."""
    shown = clean(text, limit, one_line=True)
    if shown == text:
        return shown
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return clean(text, limit - len(digest) - 2, one_line=True) + " ~" + digest


def bounded_finding(finding: Finding) -> Finding:
    message = clean(finding.message, MESSAGE_CHARS, one_line=True)
    code = None if finding.code is None else clean(finding.code, CODE_CHARS, one_line=True)
    if message is finding.message and code is finding.code:
        return finding  # nothing to change: no copy
    return replace(finding, message=message, code=code)


def bounded_result(result: SubmissionResult) -> SubmissionResult:
    fields = {"student": identifier(result.student), "path": clean(result.path, PATH_CHARS, one_line=True),
              "section": clean(result.section, NAME_CHARS, one_line=True),
              "error": clean(result.error, MESSAGE_CHARS, one_line=True),
              "findings": [bounded_finding(f) for f in result.findings],
              "output": clean(result.output, OUTPUT_CHARS),
              "sources": {cell: source(text) for cell, text in result.sources.items()}}
    unchanged = (fields["student"] is result.student and fields["path"] is result.path
                 and fields["section"] is result.section and fields["error"] is result.error
                 and fields["output"] is result.output
                 and all(a is b for a, b in zip(fields["findings"], result.findings))
                 and all(fields["sources"][cell] is text for cell, text in result.sources.items()))
    return result if unchanged else replace(result, **fields)


def bounded(run: RunResult) -> RunResult:
    """The run as every report sees it: each student-derived string cleaned and capped. The
    rubric's own text (titles, ids) is the instructor's, cleaned too since it costs nothing."""
    submissions = run.submissions
    if isinstance(submissions, ResultView):  # a class of any size: cleaned as it is loaded
        submissions = submissions.mapped(bounded_result)
    else:
        submissions = [bounded_result(r) for r in submissions]
    return replace(run, submissions=submissions, rubric_title=clean(run.rubric_title, MESSAGE_CHARS, one_line=True))


def bounded_header(run: RunResult) -> RunResult:
    """What `bounded` makes of the run's own fields, without its submissions."""
    return replace(run, submissions=[], rubric_title=clean(run.rubric_title, MESSAGE_CHARS, one_line=True))


def render_whole(writer_class, run: RunResult) -> str:
    """A report as one text, made by its streaming `writer_class(handle, run)` (add each
    submission, then close) over the run as `bounded` cleans it: what the tests and the
    single-notebook formats use; write.py streams the same writers to files."""
    buffer = io.StringIO()
    writer = writer_class(buffer, run)
    for result in bounded(run).submissions:
        writer.add(result)
    writer.close()
    return buffer.getvalue()
