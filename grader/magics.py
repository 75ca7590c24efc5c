"""IPython's translation of the common notebook line shapes, done here without importing IPython.

Nearly every course notebook has a line or two of IPython syntax in its import cell
(`%matplotlib inline`, `%load_ext autoreload`, `!pip install ...`, a `%%time` cell). IPython's
own transformer (ipython_worker.py) costs a worker process and a ~0.1-0.5 s import for those.
`translate` gives the very text `TransformerManager().transform_cell` gives (and its parse),
for these shapes:

- a whole line `%magic args`, `!cmd` or `!!cmd`, at any indentation, that ends on its own line
  (no open bracket, string or backslash continuing it, no `?` at its end);
- a first line `%%magic args` (the whole cell is the cell magic's body).

For any other cell it returns None and the caller asks IPython. The rule is exact, not a guess:
IPython rewrites one escaped line at a time, the earliest first, re-tokenising the cell after
each; a whole escaped line that ends cleanly leaves the tokenizer where the Python call replacing
it leaves it, so every rewrite IPython makes is the one made here. We check that by
tokenising the translation: each rewritten line must start a logical line of it, and it must
parse as Python (so no other IPython syntax, such as `x = %ls` or `obj?`, is left for IPython
to rewrite). tests/test_magics.py compares the two on generated cells and on the shared corpus.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass

from dropout_grader.parsing import parse as parse_python

# Line boundaries of str.splitlines (which IPython splits on) other than "\n": where they
# appear, IPython's line count and Python's differ; such cells are left to IPython.
_OTHER_LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# The prompts IPython strips from pasted sessions (its classic_prompt and ipython_prompt),
# matched loosely: a cell that may hold one is left to IPython.
_DOCTEST_PROMPT = re.compile(r"^\s*>>>")
_IPYTHON_PROMPT = re.compile(r"^(\s*\.\.\.|((\[nav\]|\[ins\])? )?In \[)")  # IPython 8 strips `... ` too
_CELL_MAGIC_HELP = re.compile(r"%%\w+\?")  # `%%time?` is a help request
_ESCAPED = re.compile(r"[ \t]*[%!]")
MAX_ESCAPED_LINES = 50  # more than any import cell; past it, IPython's bounded worker decides


@dataclass(frozen=True)
class Translation:
    text: str  # what IPython's transform_cell returns
    tree: ast.Module  # the text, parsed (once: the caller needs it too)


def translate(source: str) -> Translation | None:
    """IPython's translation of `source`, or None if the cell is not one of the shapes above."""
    if _OTHER_LINE_BREAKS.search(source):
        return None
    cell = source if source.endswith("\n") else source + "\n"
    lines = cell.splitlines(keepends=True)
    if lines[0].isspace():  # IPython drops leading blank lines (and so shifts line numbers)
        return None
    # IPython's cleanup, in its order: the common indentation removed (textwrap.dedent, as
    # IPython calls it: whitespace-only lines become empty), then prompts, which we leave to it.
    lines = textwrap.dedent(cell).splitlines(keepends=True)
    if any(_DOCTEST_PROMPT.match(line) for line in lines) or any(
            _IPYTHON_PROMPT.match(line) for line in lines[:2]):
        return None
    if lines[0].startswith("%%"):
        return _cell_magic(lines)
    escaped = [row for row, line in enumerate(lines) if _ESCAPED.match(line)]
    if not escaped or len(escaped) > MAX_ESCAPED_LINES:
        return None
    translated = list(lines)
    for row in escaped:
        call = _line_call(lines[row])
        if call is None:
            return None
        translated[row] = call
    text = "".join(translated)
    try:
        tree = parse_python(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # IPython syntax left, or none
        return None
    return Translation(text, tree) if _each_starts_a_statement(text, escaped) else None


def _cell_magic(lines: list[str]) -> Translation | None:
    """IPython's `cell_magic` line transform; the call it makes has nothing left to rewrite."""
    if _CELL_MAGIC_HELP.match(lines[0]):
        return None
    name, _, first_line = lines[0][2:].rstrip().partition(" ")
    text = "get_ipython().run_cell_magic(%r, %r, %r)\n" % (name, first_line, "".join(lines[1:]))
    try:
        return Translation(text, parse_python(text))
    except (ValueError, RecursionError, MemoryError):  # (a call of three string literals: never a SyntaxError)
        return None


def _line_call(line: str) -> str | None:
    """The Python call IPython puts in place of one escaped line, if the line is a whole
    statement on its own (see the module's docstring)."""
    if line.endswith("\\\n"):  # IPython joins the next line to it
        return None
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, SyntaxError):  # an open bracket or string runs past the line
        return None
    significant = [t for t in tokens if t.type not in (tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)]
    newlines = [t for t in significant if t.type in (tokenize.NEWLINE, tokenize.NL)]
    # One logical line, ended here: the tokenizer is back where a Python statement leaves it.
    if len(newlines) != 1 or significant[-1] is not newlines[0] or newlines[0].type != tokenize.NEWLINE:
        return None
    first = significant[0]
    if first.string not in ("%", "!"):  # `!=`, `%=`: an operator, not an escape
        return None
    if significant[-2].string == "?":  # IPython reads `... x?` as a help request
        return None
    column = first.start[1]
    indent, command = line[:column], line[column:].rstrip()
    if command.startswith("!!"):
        call = "get_ipython().getoutput({!r})".format(command[2:])
    elif command.startswith("!"):
        call = "get_ipython().system({!r})".format(command[1:])
    else:
        name, _, args = command[1:].partition(" ")
        call = "get_ipython().run_line_magic({!r}, {!r})".format(name, args)
    return indent + call + "\n"


def _each_starts_a_statement(text: str, rows: list[int]) -> bool:
    """Each rewritten line begins a logical line of the (parsed) translation: not the middle of
    a bracket, string or continued line, where IPython would not have seen it."""
    try:
        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        starts = set()
        at_start = True
        for token in tokens:
            if token.type in (tokenize.INDENT, tokenize.DEDENT):
                continue
            if at_start and token.type not in (tokenize.NL, tokenize.COMMENT):
                starts.add((token.start[0] - 1, token.start[1], token.string))
                at_start = False
            if token.type == tokenize.NEWLINE:
                at_start = True
    except (SyntaxError, tokenize.TokenError):  # (the text parses: the tokenizer should agree)
        return False
    lines = text.splitlines()
    return all((row, len(lines[row]) - len(lines[row].lstrip(" \t")), "get_ipython") in starts
               for row in rows)
