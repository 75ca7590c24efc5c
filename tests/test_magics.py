"""The in-process translation of IPython's common line shapes (magics.py) is IPython's own:
on generated cells and on every cell of the shared corpus it gives IPython's text, or declines
and leaves the cell to IPython."""

from __future__ import annotations

import ast
import json
import keyword
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CORPUS
from dropout_grader.extract import extract
from dropout_grader.magics import translate
from dropout_grader.notebook import Cell

IPython = pytest.importorskip("IPython.core.inputtransformer2")


def ipython(source: str) -> str:
    return IPython.TransformerManager().transform_cell(source)


def agrees(source: str) -> str | None:
    """The translation, after checking it is IPython's (or that it declined)."""
    translation = translate(source)
    if translation is None:
        return None
    assert translation.text == ipython(source), source
    assert ast.dump(translation.tree) == ast.dump(ast.parse(translation.text))
    return translation.text


# --- generated cells ---------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(lambda name: not keyword.iskeyword(name))
# Arguments as students write them, and characters that change how a line tokenizes.
WORDS = st.one_of(NAMES, st.sampled_from([
    "inline", "2", "-q", "numpy==1.24", "'retina'", '"x y"', "it's", "=", "==", "(", ")", "[1]",
    "#", "# note", "?", "??", "\\", "$HOME", "a.b", "*", ";", ",", "%", "!", "'''", '"""', "é", "\t"]))
ARGS = st.lists(WORDS, max_size=4).map(" ".join)
INDENT = st.sampled_from(["", "", "    ", "\t", "  "])

escape_line = st.builds(lambda indent, escape, name, args, tail: f"{indent}{escape}{name} {args}{tail}".rstrip(" ") + "\n",
                        INDENT, st.sampled_from(["%", "!", "!!", "%%", "%", "!"]), NAMES, ARGS,
                        st.sampled_from(["", "", " ", "?", " \\"]))
python_line = st.one_of(
    st.builds(lambda i, n, v: f"{i}{n} = {v}\n", INDENT, NAMES, st.sampled_from(["1", "np.ones(3)", "'%s' % x", "a % b", "(1,", "2)", "[", "]"])),
    st.builds(lambda i, n: f"{i}import {n}\n", INDENT, NAMES),
    st.builds(lambda n: f"def {n}(x):\n", NAMES),
    st.builds(lambda n: f"if {n}:\n", NAMES),
    st.sampled_from(["\n", "   \n", "# a comment with %magic and !bang\n", "s = '''\n", "'''\n", "x = (1\n",
                     "     % 2)\n", "y = 1 + \\\n", ">>> x = 1\n", "In [1]: x\n", "... x\n", "obj?\n", "x = %ls\n",
                     "x = !ls\n", "pass\n", "    return x\n", "\r\n", "z = 3\x0c\n"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(escape_line, python_line), min_size=1, max_size=8).map("".join),
       st.booleans())
def test_any_cell_is_translated_as_ipython_does_or_left_to_it(source, trailing_newline):
    agrees(source if trailing_newline else source.rstrip("\n"))


# The shapes the translation exists for, in cells that are otherwise plain Python: it must take
# them (not only decline), give IPython's text, and keep every line where it was.
common_line = st.builds(lambda escape, name, args: f"{escape}{name} {args}".rstrip(" ") + "\n",
                        st.sampled_from(["%", "!", "!!"]), NAMES,
                        st.lists(st.one_of(NAMES, st.sampled_from(["inline", "2", "-q", "numpy==1.24", "'retina'", "=", "it's", "$HOME", "# why"])),
                                 max_size=3).map(" ".join))
plain_line = st.one_of(st.builds(lambda n: f"import {n}\n", NAMES),
                       st.builds(lambda n: f"{n} = 1\n", NAMES),
                       st.sampled_from(["# setup\n", "\n", "print('%d%%' % 5)\n"]))
block = st.builds(lambda header, lines: header + "".join("    " + l if l.strip() else l for l in lines) + "    pass\n",
                  st.sampled_from(["def setup():\n", "if True:\n", "for _ in range(1):\n"]),
                  st.lists(st.one_of(common_line, plain_line), max_size=3))


@settings(max_examples=300, deadline=None)
@given(common_line, st.lists(st.one_of(common_line, plain_line, block), max_size=6).map("".join))
def test_the_common_shapes_are_translated_here_with_their_line_numbers(first, rest):
    source = first + rest
    mine = agrees(source)
    assert mine is not None, source
    assert len(mine.splitlines()) == len(source.splitlines())


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["%%time", "%%capture out", "%%timeit -n1", "%%bash", "%%writefile x.py"]),
       st.lists(st.one_of(common_line, plain_line, block), max_size=5).map("".join))
def test_cell_magics_are_translated(first, body):
    source = f"{first}\n{body}"
    assert agrees(source) is not None


@pytest.mark.parametrize("source", [
    "%matplotlib inline", "  %%time\n  x = 1\n", "def f():\n    %time g()\n", "if x:\n\t!ls\n",
    "%config InlineBackend.figure_format = 'retina'\n", "!echo it's # $HOME\n", "!!ls\n", "a = 1\n   \n%ls\n",
])
def test_common_shapes_are_translated(source):
    assert agrees(source) is not None


@pytest.mark.parametrize("source", [
    "\n%matplotlib inline\n",         # IPython drops the leading blank line: its lines shift
    "x = %ls\n", "x = !ls\n",        # assignments from magics
    "%ls\nnp.ones?\n",               # a help request
    "!ls ?\n", "%pinfo x?\n",
    "%run a \\\n  b.py\n",           # continued onto the next line
    "x = (1\n% 2)\n",                # a `%` inside brackets is Python's operator
    "s = '''\n!not a command\n'''\n",
    "!echo '''\n",                   # opens a string the rest of the cell would be in
    ">>> %ls\n", "In [1]: %ls\n",    # pasted prompts
    "%ls\r\n", "!=1\n",
])
def test_other_shapes_are_left_to_ipython(source):
    assert translate(source) is None


# --- extraction: same as through IPython, and IPython never asked for the common shapes ---------

GRADED = {"forward": "forward_propagation_with_dropout"}
NOTEBOOK = [
    "%matplotlib inline\n%load_ext autoreload\n%autoreload 2\nimport numpy as np\n!pip install -q nothing\n",
    "%%time\n\ndef forward_propagation_with_dropout(X, parameters, keep_prob):\n    return helper(X)\n",
    "def helper(X):\n    %time x = 1\n    return np.ones(1)\n",
]


def never(source: str) -> str:
    raise AssertionError(f"IPython was asked to translate {source!r}")


def test_extraction_of_common_shapes_is_ipythons_without_asking_it():
    here = extract([Cell(i, s) for i, s in enumerate(NOTEBOOK)], GRADED, never)
    through_ipython = extract([Cell(i, s) for i, s in enumerate(NOTEBOOK)], GRADED, ipython)
    assert here == through_ipython
    function = here.functions["forward"]
    assert (function.cell, function.line) == (1, 3)  # the cell's own line numbers
    assert [(f.cell, f.first_line, f.kind) for f in here.fragments] == [
        (0, 4, "import"), (1, 3, "function"), (2, 1, "function")]
    assert here.fragments[2].source.splitlines()[1] == "    get_ipython().run_line_magic('time', 'x = 1')"


def test_a_notebook_of_common_shapes_does_not_import_ipython():
    code = ("import json, sys\nfrom dropout_grader.extract import extract\nfrom dropout_grader.notebook import Cell\n"
            f"cells = [Cell(i, s) for i, s in enumerate(json.loads({json.dumps(json.dumps(NOTEBOOK))}))]\n"
            f"assert 'forward' in extract(cells, {GRADED!r}, None).functions\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'IPython'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- the shared corpus: every code cell translated as IPython does, or left to it --------------

def corpus_cells() -> list[str]:
    sources = []
    for path in sorted((CORPUS / "real").glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cells = notebook.get("cells") or [c for w in notebook.get("worksheets", []) for c in w.get("cells", [])]
        for cell in cells:
            if cell.get("cell_type") == "code":
                source = cell.get("source", cell.get("input", ""))
                sources.append("".join(source) if isinstance(source, list) else source)
    return sources


@pytest.mark.skipif(not (CORPUS / "real").is_dir(), reason=f"the real corpus is not at {CORPUS}")
def test_every_corpus_cell_is_translated_as_ipython_does_or_left_to_it():
    sources = corpus_cells()
    ipython_syntax = [s for s in sources if any(line.lstrip().startswith(("%", "!")) for line in s.splitlines())]
    translated = [s for s in sources if agrees(s) is not None]
    # The corpus' IPython syntax is import-cell magics: all of them are translated here.
    assert len(ipython_syntax) > 40
    assert set(translated) == set(ipython_syntax)
