"""Values as students write them, through the whole pipeline: list masks, namedtuple caches,
float32, dropout before relu, pre-scaled masks, NaN in a debugging line, helper modules of
the same week; and the mistakes that used to crash, be missed or be misattributed. Also the
forged evidence of issue 9: a mask has to change when the random streams do."""

from __future__ import annotations

import pytest

from conftest import load_examples_module, non_ok

ex = load_examples_module()


def grade(grade_cells, forward=None, backward=None, imports=None):
    return grade_cells(imports or ex.IMPORTS, forward or ex.forward(), backward or ex.backward())


def wrong(result) -> dict[str, str]:
    return {f.step: f.diagnosis for f in result.findings if f.verdict == "wrong"}


def finding(result, step):
    return next(f for f in result.findings if f.step == step)


# --- correct code, written as students write it: full marks --------------------------------
NAMEDTUPLE = ex.forward().replace(
    "    cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)",
    "    from collections import namedtuple\n"
    "    Cache = namedtuple('Cache', 'Z1 D1 A1 W1 b1 Z2 D2 A2 W2 b2 Z3 A3 W3 b3')\n"
    "    cache = Cache(Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)")
FLOAT32 = ex.forward().replace(
    '    W1, b1 = parameters["W1"], parameters["b1"]',
    '    X = X.astype(np.float32)\n    parameters = {k: v.astype(np.float32) for k, v in parameters.items()}\n'
    '    W1, b1 = parameters["W1"], parameters["b1"]').replace(
    "A1 = A1 / keep_prob", "A1 = A1 / np.float32(keep_prob)").replace("A2 = A2 / keep_prob", "A2 = A2 / np.float32(keep_prob)")
CORRECT = {
    "list of lists mask": ex.forward(l1=dict(threshold="D1 = (D1 < keep_prob).astype(int).tolist()")),
    "list of row arrays": ex.forward(l2=dict(threshold="D2 = list(D2 < keep_prob)")),
    "namedtuple cache": NAMEDTUPLE,
    "list cache": ex.forward().replace("cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)",
                                       "cache = [Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3]"),
    "dropout on Z before relu": ex.forward(l1=dict(apply="Z1 = Z1 * D1 / keep_prob", scale="A1 = relu(Z1)"),
                                           l2=dict(apply="Z2 = Z2 * D2", scale="Z2 = Z2 / keep_prob\n    A2 = relu(Z2)")),
    "float32 arithmetic": FLOAT32,
    "np.random.random": ex.forward(l1=dict(draw="D1 = np.random.random(A1.shape)")),
    "uniform(0, 1)": ex.forward(l2=dict(draw="D2 = np.random.uniform(0, 1, A2.shape)")),
    "NaN in a debugging line": ex.forward(l1=dict(
        draw="debug = np.log(A1 - A1 - 1)\n    print(debug.sum(), np.inf)\n"
             "    D1 = np.random.rand(A1.shape[0], A1.shape[1])")),
}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_code_as_students_write_it_gets_full_marks(grade_cells, name):
    result = grade(grade_cells, CORRECT[name])
    assert non_ok(result) == {}, name
    assert result.score == result.max_score


@pytest.mark.parametrize("module", ["gc_utils", "init_utils", "reg_utils", "dlai_tools.testing_utils",
                                    "public_tests", "testCases", "test_utils"])
def test_helper_modules_of_the_same_week_are_stood_in_for(grade_cells, module):
    imports = f"import numpy as np\nfrom {module} import *\n"
    if module not in ("gc_utils", "init_utils", "reg_utils"):
        imports += "from reg_utils import relu, sigmoid\n"
    else:
        imports += f"from {module} import relu, sigmoid\n"
    result = grade(grade_cells, imports=imports)
    assert wrong(result) == {}, [f.message for f in result.findings if f.verdict == "wrong"]


def test_pre_scaled_mask_is_a_valid_convention(grade_cells):
    source = ex.forward(l1=dict(threshold="D1 = (D1 < keep_prob) / keep_prob", apply="A1 = A1 * D1", scale="-"))
    result = grade(grade_cells, source)
    assert non_ok(result) == {"forward.layer1.mask": "pre_scaled"}
    assert result.score == result.max_score
    assert "0.7x" not in finding(result, "forward.layer1.mask").message


# --- mistakes that crashed, were missed or misattributed -----------------------------------
def test_all_zero_mask_is_a_keep_rate_mistake(grade_cells):
    result = grade(grade_cells, ex.forward(l1=dict(threshold="D1 = (D1 < int(keep_prob)).astype(int)")))
    assert result.status == "graded"
    assert wrong(result) == {"forward.layer1.mask": "keep_rate"}
    assert "drops every unit" in finding(result, "forward.layer1.mask").message


def test_mask_reused_as_a_slice_of_the_other_layers(grade_cells):
    result = grade(grade_cells, ex.forward(l2=dict(draw="D2 = np.random.rand(A1.shape[0], A1.shape[1])",
                                                   threshold="D2 = (D1[:A2.shape[0]] < keep_prob)")))
    assert "forward.layer2.mask" in wrong(result)


def test_slice_of_layer_1_mask_is_reused(grade_cells):
    result = grade(grade_cells, ex.forward(l2=dict(draw="-", threshold="D2 = D1[:A2.shape[0]]")))
    assert wrong(result) == {"forward.layer2.mask": "reused"}
    assert result.score < result.max_score


def test_mask_with_the_other_layers_shape_cannot_score_full_marks(grade_cells):
    result = grade(grade_cells, ex.forward(l2=dict(draw="D2 = np.random.rand(A1.shape[0], A1.shape[1])")))
    assert finding(result, "forward.function").diagnosis == "error"
    assert result.score < result.max_score


@pytest.mark.parametrize("cache, needle", [
    ("(Z1, A1, D1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)", "D1 and A1"),
    ("(Z1, D1, A1.T, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)", "entry 2 (A1) has shape"),
    ("(Z1, D1, 0.0, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)", "entry 2 (A1) is a single number"),
    ("(W1, D1, A1, Z1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)", "it holds W1"),
    ("{'Z1': Z1, 'D1': D1}", "a dict"),
])
def test_a_cache_of_the_wrong_kind_is_malformed_and_says_which_entry(grade_cells, cache, needle):
    source = ex.forward().replace("(Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)", cache)
    result = grade(grade_cells, source)
    assert result.status == "graded"
    assert wrong(result) == {"forward.cache": "malformed"}
    message = finding(result, "forward.cache").message
    assert needle in message, message
    assert finding(result, "forward.cache").code.strip().startswith("cache =")


def test_forward_returning_cache_first_is_told_so(grade_cells):
    result = grade(grade_cells, ex.forward().replace("return A3, cache", "return cache, A3"))
    assert wrong(result) == {"forward.function": "bad_return"}
    assert "(cache, A3), in the other order" in finding(result, "forward.function").message


def test_backward_mask_from_activations_is_named_on_the_mask_step(grade_cells):
    result = grade(grade_cells, backward=ex.backward(l1=dict(mask="dA1 = dA1 * (A1 > 0)")))
    assert wrong(result) == {"backward.layer1.mask": "from_activations"}
    assert finding(result, "backward.layer1.mask").code.strip() == "dA1 = dA1 * (A1 > 0)"


def test_dropout_on_dZ_is_one_mistake(grade_cells):
    source = ex.backward(l2=dict(mask="-", scale="-")).replace(
        "    dZ2 = np.multiply(dA2, np.int64(A2 > 0))\n",
        "    dZ2 = np.multiply(dA2, np.int64(A2 > 0))\n    dZ2 = dZ2 * D2 / keep_prob\n")
    result = grade(grade_cells, backward=source)
    assert wrong(result) == {"backward.layer2.mask": "applied_to_dZ"}


def test_input_dropout_is_named(grade_cells):
    source = ex.forward().replace(
        "    Z1 = np.dot(W1, X) + b1\n",
        "    D0 = np.random.rand(X.shape[0], X.shape[1]) < keep_prob\n    X = X * D0 / keep_prob\n"
        "    Z1 = np.dot(W1, X) + b1\n")
    result = grade(grade_cells, source)
    assert wrong(result) == {"forward.cache": "input_dropout"}
    assert finding(result, "forward.cache").code.strip() == "X = X * D0 / keep_prob"


def test_gradient_left_as_none_is_not_called_a_formula_mistake(grade_cells):
    result = grade(grade_cells, backward=ex.backward().replace('"dA1": dA1', '"dA1": None'))
    message = finding(result, "backward.gradients").message
    assert "dA1 is None" in message and "not a dropout step" not in message


# --- forged evidence (issue 9) -------------------------------------------------------------
FORGED = {
    # a mask that is the same whatever the stream: np.arange, not a draw
    "fixed pattern": ex.forward(l1=dict(draw="D1 = (np.arange(A1.size).reshape(A1.shape) * 7919 % 100) / 100.0",
                                        threshold="D1 = (D1 < keep_prob).astype(int)")),
    # a generator of its own, created from an unkeyed bit source: the same numbers every time
    "fixed numbers": ex.forward(l1=dict(
        draw="D1 = np.array([((i * 2654435761) % 1000) / 1000 for i in range(A1.size)]).reshape(A1.shape)")),
    # fake records written into the recorder, so the draws 'explain' a fixed mask
    "fake records": ex.forward(l1=dict(draw=(
        "fake = (np.arange(A1.size).reshape(A1.shape) * 7919 % 100) / 100.0\n"
        "    for cell in (np.random.rand.__closure__ or ()):\n"
        "        target = cell.cell_contents\n"
        "        if hasattr(target, 'log'):\n"
        "            target.log('rand', (A1.shape[0], A1.shape[1]), {}, fake)\n"
        "    D1 = fake"))),
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_a_mask_that_does_not_follow_the_stream_is_not_dropout(grade_cells, name):
    result = grade(grade_cells, FORGED[name])
    assert wrong(result) == {"forward.layer1.mask": "not_random"}, name
    assert result.score < result.max_score


def test_uniform_with_equal_bounds_is_not_a_mask(grade_cells):
    result = grade(grade_cells, ex.forward(l1=dict(draw="D1 = np.random.uniform(0.2, 0.2, A1.shape)")))
    assert wrong(result) == {"forward.layer1.mask": "keep_rate"}


LEGITIMATE = {
    "rand": ex.forward(),
    "random_sample": ex.forward(l1=dict(draw="D1 = np.random.random_sample(A1.shape)")),
    "uniform(0,1)": ex.forward(l1=dict(draw="D1 = np.random.uniform(0, 1, size=A1.shape)")),
    "binomial": ex.forward(l1=dict(draw="D1 = np.random.binomial(1, keep_prob, size=A1.shape)", threshold="-")),
    "default_rng seeded": ex.forward(l1=dict(draw="D1 = np.random.default_rng(1).random(A1.shape)")),
    "complement": ex.forward(l1=dict(threshold="D1 = D1 > 1 - keep_prob")),
    "RandomState seeded": ex.forward(l1=dict(draw="D1 = np.random.RandomState(1).rand(*A1.shape)")),
    "Generator(PCG64(1))": ex.forward(l1=dict(draw="D1 = np.random.Generator(np.random.PCG64(1)).random(A1.shape)")),
    "python random seeded": ex.forward(l1=dict(draw=(
        "import random\n    random.seed(1)\n"
        "    D1 = np.array([random.random() for _ in range(A1.size)]).reshape(A1.shape)"))),
    "SeedSequence": ex.forward(l1=dict(draw="D1 = np.random.default_rng(np.random.SeedSequence(1)).random(A1.shape)")),
}


@pytest.mark.parametrize("name", sorted(LEGITIMATE))
def test_every_legitimate_way_to_draw_still_passes(grade_cells, name):
    result = grade(grade_cells, LEGITIMATE[name])
    assert wrong(result) == {}, name
    assert result.score == result.max_score


# --- a student's own helper modules beside the notebook -----------------------------------
def test_own_helper_module_beside_the_notebook_is_imported(grader, tmp_path):
    from conftest import write_notebook
    from dropout_grader.results import Submission

    (tmp_path / "my_helpers.py").write_text(
        "import numpy as np\n\ndef relu(z):\n    return np.maximum(z, 0)\n\n"
        "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n")
    # a copy of the course's module that cannot load here: the stand-in is used instead
    (tmp_path / "reg_utils.py").write_text("import sklearn.datasets\nimport h5py\n")
    path = write_notebook(tmp_path / "nb.ipynb", "import numpy as np\nfrom my_helpers import relu, sigmoid\n"
                          "from reg_utils import load_2D_dataset", ex.forward(), ex.backward())
    result = grader.grade(Submission("own", str(path)))
    assert wrong(result) == {}, [f.message for f in result.findings if f.verdict == "wrong"]
    assert result.score == result.max_score


def test_own_modules_are_read_only_from_regular_files(tmp_path):
    import os

    from dropout_grader.own_modules import read_own_modules

    (tmp_path / "good.py").write_text("x = 1\n")
    (tmp_path / "not-a-name.py").write_text("x = 1\n")
    os.mkfifo(tmp_path / "fifo.py")
    os.symlink("/etc/passwd", tmp_path / "link.py")
    (tmp_path / "huge.py").write_text("#" * 300_000)
    assert read_own_modules(tmp_path / "nb.ipynb") == {"good": "x = 1\n"}


def test_a_folder_shared_by_several_notebooks_gives_no_modules(tmp_path):
    from dropout_grader.own_modules import read_own_modules

    (tmp_path / "helpers.py").write_text("x = 1\n")
    (tmp_path / "ada.ipynb").write_text("{}")
    (tmp_path / "bob.ipynb").write_text("{}")
    assert read_own_modules(tmp_path / "ada.ipynb") == {}
