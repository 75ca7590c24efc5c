"""Extraction without a kernel: what is kept, from where, and what is reported."""

from __future__ import annotations

from dropout_grader.extract import extract
from dropout_grader.notebook import Cell

GRADED = {"forward": "forward_propagation_with_dropout", "backward": "backward_propagation_with_dropout"}


def cells(*sources: str) -> list[Cell]:
    return [Cell(i, s) for i, s in enumerate(sources)]


def kept(extraction) -> list[tuple[int, int, str]]:
    return [(f.cell, f.first_line, f.kind) for f in extraction.fragments]


def test_magics_are_translated_and_imports_kept():
    result = extract(cells(
        "%matplotlib inline\nimport numpy as np\n!pip install nothing\nimport sklearn",
        "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return np.ones(1)\n",
    ), GRADED)
    assert "forward" in result.functions
    # numpy is needed; sklearn is not; the magic and the shell line are never kept.
    assert kept(result) == [(0, 2, "import"), (1, 1, "function")]
    assert result.fragments[0].source == "import numpy as np\n"


def test_last_definition_wins_and_all_definitions_are_listed():
    result = extract(cells(
        "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return 1\n",
        "x = 1",
        "\n\ndef forward_propagation_with_dropout(X, parameters, keep_prob):\n    return 2\n",
    ), GRADED)
    function = result.functions["forward"]
    assert (function.cell, function.line) == (2, 3)
    assert function.definitions == ((0, 1), (2, 3))
    assert [f.cell for f in result.fragments] == [2]


def test_helpers_and_constants_are_kept_transitively_with_their_cells():
    result = extract(cells(
        "import numpy as np\nKEEP_SCALE = 1.0\nUNUSED = 3",
        "def mask(A, k):\n    return np.random.rand(*A.shape) < k * KEEP_SCALE\n",
        "def drop(A, k):\n    return A * mask(A, k) / k\n\ndef unrelated():\n    return 0\n",
        "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return drop(X, keep_prob)\n",
    ), GRADED)
    assert kept(result) == [(0, 1, "import"), (0, 2, "constant"), (1, 1, "function"),
                            (2, 1, "function"), (3, 1, "function")]


def test_locals_shadowing_module_names_do_not_pull_them_in():
    result = extract(cells(
        "import numpy as np",
        "cache = expensive_setup()\nA1 = 5",
        "def forward_propagation_with_dropout(X, parameters, keep_prob):\n"
        "    A1 = X\n    cache = (A1,)\n    return A1, cache\n",
    ), GRADED)
    assert [f.kind for f in result.fragments] == ["function"]


def test_test_run_assignments_are_never_dependencies():
    # `A3, cache = forward(...)` at module level is a test run, not a constant.
    result = extract(cells(
        "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return cache\n",
        "A3, cache = forward_propagation_with_dropout(1, 2, 3)",
    ), GRADED)
    assert [f.kind for f in result.fragments] == ["function"]


def test_syntax_error_in_a_cell_without_graded_code_does_not_matter():
    result = extract(cells(
        "this is not python (",
        "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return 1\n",
    ), GRADED)
    assert "forward" in result.functions and not result.syntax_errors


def test_syntax_error_in_the_graded_cell_is_reported_with_cell_and_line():
    result = extract(cells(
        "import numpy as np",
        "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    A = (X +\n    return A\n",
    ), GRADED)
    assert "forward" not in result.functions
    problem = result.syntax_errors["forward"]
    assert (problem.cell, problem.line) == (1, 2)
    assert problem.message.startswith("SyntaxError")


def test_a_later_broken_definition_wins_over_an_earlier_good_one():
    result = extract(cells(
        "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return 1\n",
        "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return (\n",
    ), GRADED)
    assert result.syntax_errors["forward"].cell == 1


def test_source_map_points_back_into_the_cell():
    result = extract(cells(
        "# a comment\n\n@staticmethod\ndef forward_propagation_with_dropout(X, parameters, keep_prob):\n"
        "    a = 1\n    b = 2\n    return a + b\n",
    ), GRADED)
    fragment = result.fragments[0]
    assert fragment.first_line == 3  # the decorator's line
    assert fragment.cell_line(1) == 3
    assert fragment.cell_line(5) == 7  # "return a + b" is line 7 of the cell
    assert fragment.source.splitlines()[4].strip() == "return a + b"


def test_star_imports_are_kept_only_when_a_name_is_unresolved():
    resolved = extract(cells(
        "from testCases import *\nimport numpy as np",
        "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return np.ones(1)\n",
    ), GRADED)
    assert [f.binds for f in resolved.fragments] == [("np",), ("forward_propagation_with_dropout",)]
    unresolved = extract(cells(
        "from reg_utils import *",
        "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return relu(X)\n",
    ), GRADED)
    assert unresolved.fragments[0].binds == ("*",)


def test_template_left_untouched_is_recognised():
    template = ("def forward_propagation_with_dropout(X, parameters, keep_prob):\n"
                "    ### START CODE HERE ###\n    D1 = None\n    # D1 = ...\n    ### END CODE HERE ###\n"
                "    return D1\n")
    filled = template.replace("D1 = None", "D1 = X")
    assert extract(cells(template), GRADED).functions["forward"].template_untouched
    assert not extract(cells(filled), GRADED).functions["forward"].template_untouched


def test_parameters_are_read_for_the_signature_check():
    result = extract(cells("def backward_propagation_with_dropout(dA3, cache, keep_prob=0.5):\n    pass\n"), GRADED)
    assert result.functions["backward"].parameters == ("dA3", "cache", "keep_prob")
    assert "forward" not in result.functions


def test_parsing_stops_at_the_notebook_budget():
    from dropout_grader.extract import MAX_NOTEBOOK_CHARS

    filler = "x = [" + "1, " * 90_000 + "]\n"  # ~270 kB, under the per-cell limit
    many = [filler] * (MAX_NOTEBOOK_CHARS // len(filler) + 1)
    result = extract(cells(*many, "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return 1\n"), GRADED)
    assert "forward" not in result.functions
    assert "more than 3 MB of code" in result.syntax_errors["forward"].message


def test_a_time_cell_magic_runs_its_body_as_python():
    result = extract(cells(
        "import numpy as np",
        "%%time\ndef forward_propagation_with_dropout(X, parameters, keep_prob):\n    a = 1\n    return a\n",
        "%%bash\necho not python\n",
    ), GRADED)
    function = result.functions["forward"]
    assert (function.cell, function.line) == (1, 2)
    assert result.fragments[-1].cell_line(3) == 4  # `return a` is line 4 of the cell


# --- IPython's transformer on untrusted cells: bounded in time and memory ----------------------

import time  # noqa: E402

import pytest  # noqa: E402

from dropout_grader.extract import MAX_IPYTHON_LINES  # noqa: E402
from dropout_grader.ipython_worker import BoundedTransformer, TransformRefused  # noqa: E402

FORWARD = "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return np.ones(1)\n"


@pytest.fixture(scope="module")
def transformer():
    bounded = BoundedTransformer(wall_seconds=3)
    yield bounded
    bounded.close()


def test_a_cell_of_magic_assignments_is_refused_at_once(transformer):
    hostile = "x = %ls\n" * 5000  # 40 kB: held the grader 58-68 s in IPython's transformer
    started = time.monotonic()
    result = extract(cells("import numpy as np\n" + hostile, FORWARD), GRADED, transformer)
    assert time.monotonic() - started < 2
    assert "forward" in result.functions  # the rest of the notebook is graded
    assert not any(f.cell == 0 and f.kind == "import" for f in result.fragments)


def test_under_the_line_bound_magics_still_translate(transformer):
    source = "%matplotlib inline\n" * (MAX_IPYTHON_LINES - 1) + "import numpy as np\n"
    result = extract(cells(source, FORWARD), GRADED, transformer)
    assert kept(result) == [(0, MAX_IPYTHON_LINES, "import"), (1, 1, "function")]


def test_the_worker_is_killed_past_its_wall_clock_and_the_next_cell_gets_a_fresh_one():
    bounded = BoundedTransformer(wall_seconds=0.5)
    try:
        slow = "x = %ls\n" * 90 + "y = " + "1+" * 60_000 + "1\n"  # under both bounds, seconds to translate
        started = time.monotonic()
        with pytest.raises(TransformRefused, match="within 0.5 s"):
            bounded(slow)
        assert time.monotonic() - started < 3
        assert "get_ipython().run_line_magic('ls', '')" in bounded("%ls\n")
    finally:
        bounded.close()


def test_a_refused_cell_is_reported_on_the_function_it_defines(transformer):
    source = "import numpy as np\n" + "!echo hi\n" * (MAX_IPYTHON_LINES + 1) + FORWARD
    result = extract(cells(source), GRADED, transformer)
    assert "forward" not in result.functions
    problem = result.syntax_errors["forward"]
    assert problem.cell == 0 and f"more than the {MAX_IPYTHON_LINES}" in problem.message


def test_a_cell_ipython_translates_keeps_its_leading_blank_lines():
    """IPython's transformer drops leading blank lines; the graded function must still be
    placed on its own line of the cell (an assignment from a magic goes to IPython)."""
    source = "\n\nfiles = %ls\ndef forward_propagation_with_dropout(X, parameters, keep_prob):\n    return X\n"
    result = extract(cells(source), GRADED)
    assert result.functions["forward"].line == 4
    fragment = result.fragments[result.functions["forward"].fragment]
    assert (fragment.cell, fragment.first_line) == (0, 4)
