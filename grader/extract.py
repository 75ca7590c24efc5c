"""Pull the graded functions out of a notebook's code cells, with what they need to run.

No kernel runs: cells are parsed with `ast`, IPython syntax is first turned into Python (the
common line shapes in this process, exactly as IPython does, by magics.py; the rest by IPython's
own input transformer), and only top-level definitions are kept: the graded functions, the
helper functions they call (transitively), the imports and module-level constants they read. Each kept statement is a `Fragment` that remembers its cell and line,
so anything reported later points back into the notebook.
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

from dropout_grader.magics import translate as translate_magics
from dropout_grader.notebook import Cell
from dropout_grader.parsing import parse as parse_python

# Markers the course's templates put around the code a student writes.
START_MARKERS = ("START CODE HERE", "YOUR CODE STARTS HERE")
END_MARKERS = ("END CODE HERE", "END CODER HERE", "YOUR CODE ENDS HERE")  # sic: a course template has the typo
BUILTINS = frozenset(dir(builtins))
MAX_CELL_CHARS = 300_000  # no real cell comes near; a hostile one could cost seconds to parse
MAX_NOTEBOOK_CHARS = 3_000_000  # all cells together: past this, later cells are not parsed
# IPython's transformer re-tokenises the whole cell per rewrite (superlinear: 100 magic lines
# 0.2 s, 400 lines 7 s, a 300 kB line 2.4 s): cells past these bounds are not translated.
MAX_TRANSFORM_CHARS = 100_000
MAX_IPYTHON_LINES = 100
_IPYTHON_LINE = re.compile(r"^\s*[%!]|=\s*[%!]|\?\s*$")


@dataclass(frozen=True)
class Fragment:
    """One top-level statement kept from the notebook, to be run in the sandbox."""
    cell: int
    first_line: int  # the statement's first line within its cell (1-based)
    source: str
    kind: str  # "function" | "class" | "import" | "constant"
    binds: tuple[str, ...]

    def cell_line(self, line: int) -> int:
        """A line of this fragment's source, as a line of its cell."""
        return self.first_line + line - 1


@dataclass(frozen=True)
class GradedFunction:
    role: str
    name: str
    fragment: int  # index into Extraction.fragments
    cell: int
    line: int
    parameters: tuple[str, ...]
    accepts_varargs: bool
    definitions: tuple[tuple[int, int], ...]  # every (cell, line) defining it, in order
    template_untouched: bool  # the code between the template's markers was never filled in


@dataclass(frozen=True)
class CellSyntaxError:
    cell: int
    line: int
    message: str


@dataclass
class Extraction:
    fragments: list[Fragment] = field(default_factory=list)
    functions: dict[str, GradedFunction] = field(default_factory=dict)
    syntax_errors: dict[str, CellSyntaxError] = field(default_factory=dict)  # by role
    cell_sources: dict[int, str] = field(default_factory=dict)  # cells that hold kept code


@dataclass
class _Statement:
    cell: int
    node: ast.stmt
    source: str
    first_line: int
    kind: str
    binds: tuple[str, ...]
    needs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ParsedCells:
    """Every code cell parsed once (whatever functions are graded): the top-level statements
    in cell order, the cells that do not parse, and each parsed cell's Python source."""
    statements: list[_Statement]
    syntax_errors: list[tuple[Cell, CellSyntaxError]]
    sources: dict[int, str]


def parse_cells(cells: list[Cell], transform: Callable[[str], str] | None = None) -> ParsedCells:
    """`transform` translates IPython syntax to Python (the grader passes its time- and
    memory-bounded `ipython_worker.BoundedTransformer`; by default IPython runs in this process)."""
    transform = transform or ipython_to_python
    statements: list[_Statement] = []
    cell_syntax_errors: list[tuple[Cell, CellSyntaxError]] = []
    parsed_sources: dict[int, str] = {}
    budget = MAX_NOTEBOOK_CHARS
    for cell in cells:
        if len(cell.source) <= MAX_CELL_CHARS:  # larger cells are refused on their own, below
            budget -= len(cell.source)
        if budget < 0:
            cell_syntax_errors.append((cell, CellSyntaxError(
                cell.index, 1, f"not parsed: the notebook has more than {MAX_NOTEBOOK_CHARS // 1_000_000} MB "
                               "of code before this cell")))
            continue
        tree, source, error = _parse_cell(cell, transform)
        if error is not None:
            cell_syntax_errors.append((cell, error))
            continue
        parsed_sources[cell.index] = source
        lines = source.splitlines()
        for node in tree.body:
            statement = _statement(cell.index, node, lines)
            if statement is not None:
                statements.append(statement)
    return ParsedCells(statements, cell_syntax_errors, parsed_sources)


def extract(cells: list[Cell], graded: dict[str, str],
            transform: Callable[[str], str] | None = None, parsed: ParsedCells | None = None) -> Extraction:
    """`graded` maps a role ("forward") to the function name the rubric grades. `parsed`: the
    cells already parsed (several rubrics grade one notebook); else they are, with `transform`
    (see parse_cells)."""
    parsed = parsed or parse_cells(cells, transform)
    statements, cell_syntax_errors, parsed_sources = parsed.statements, parsed.syntax_errors, parsed.sources

    # The binding a "Run All" would leave for each name: the last one in cell order.
    last_binding: dict[str, _Statement] = {}
    for statement in statements:
        for name in statement.binds:
            last_binding[name] = statement

    extraction = Extraction()
    roots: list[_Statement] = []
    for role, name in graded.items():
        defs = [s for s in statements if s.kind == "function" and name in s.binds]
        broken = [(c, e) for c, e in cell_syntax_errors
                  if re.search(rf"\bdef\s+{re.escape(name)}\s*\(", c.source)]
        # A later cell that defines it but does not parse wins over earlier good definitions:
        # Run All would stop there.
        if broken and (not defs or broken[-1][0].index > defs[-1].cell):
            extraction.syntax_errors[role] = broken[-1][1]
            continue
        if defs and last_binding.get(name) is defs[-1]:
            roots.append(defs[-1])

    kept = _with_dependencies(roots, last_binding, statements)
    order = sorted(kept, key=lambda s: (s.cell, s.first_line))
    index_of = {id(s): i for i, s in enumerate(order)}
    extraction.fragments = [
        Fragment(s.cell, s.first_line, s.source, s.kind, s.binds) for s in order]
    for role, name in graded.items():
        if role in extraction.syntax_errors:
            continue
        statement = last_binding.get(name)
        if statement is None or statement.kind != "function" or id(statement) not in index_of:
            continue
        node = statement.node
        args = node.args
        extraction.functions[role] = GradedFunction(
            role=role, name=name, fragment=index_of[id(statement)], cell=statement.cell,
            line=statement.first_line,
            parameters=tuple(a.arg for a in args.posonlyargs + args.args),
            accepts_varargs=args.vararg is not None,
            definitions=tuple((s.cell, s.first_line) for s in statements
                              if s.kind == "function" and name in s.binds),
            template_untouched=_template_untouched(statement.source))
    extraction.cell_sources = {s.cell: parsed_sources[s.cell] for s in order}
    for role, problem in extraction.syntax_errors.items():
        extraction.cell_sources.setdefault(problem.cell, next(c.source for c in cells if c.index == problem.cell))
    return extraction


def _parse_cell(cell: Cell, transform: Callable[[str], str]) -> tuple[ast.Module | None, str, CellSyntaxError | None]:
    """Parse as Python; if that fails, as IPython would see it (magics, !shell, help?).
    Cells larger than any real one are not parsed: a few MB of hostile expression can take
    seconds and a gigabyte in the parser."""
    source = cell.source
    if len(source) > MAX_CELL_CHARS:
        return None, source, CellSyntaxError(cell.index, 1, f"the cell has {len(source) // 1000} kB of code, "
                                             f"more than the {MAX_CELL_CHARS // 1000} kB the grader parses")
    try:
        return parse_python(source), source, None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    refused = _too_slow_to_transform(source)
    tree = None
    if refused is None:
        # The common shapes (`%matplotlib inline`, `!pip ...`, `%%time`) are translated (and
        # parsed) here, exactly as IPython would; IPython is asked only about the rest.
        translation = translate_magics(source)
        if translation is not None:
            transformed, tree = translation.text, translation.tree
        else:
            from dropout_grader.ipython_worker import TransformRefused

            try:
                transformed = _keep_leading_lines(source, transform(source))
            except TransformRefused as exc:
                refused = str(exc)
    if refused is not None:
        return None, source, CellSyntaxError(cell.index, 1, f"not parsed: {refused}")
    try:
        if tree is None:
            tree = parse_python(transformed)
        body = _python_cell_magic_body(tree)
        if body is not None:  # %%time and friends run their body as Python: so do we
            blank_first_line = "\n" + body  # keeps the body's lines where they are in the cell
            return parse_python(blank_first_line), blank_first_line, None
        return tree, transformed, None
    except SyntaxError as exc:
        return None, source, CellSyntaxError(cell.index, exc.lineno or 1, f"SyntaxError: {exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, source, CellSyntaxError(cell.index, 1, f"cannot parse the cell: {type(exc).__name__}")


def _keep_leading_lines(source: str, transformed: str) -> str:
    """IPython's transformer drops a cell's leading blank lines; put them back, so that every
    line of the translation is the cell's line of the same number (findings point at them)."""
    def leading_blank(text: str) -> int:
        count = 0
        for line in text.splitlines():
            if line.strip():
                break
            count += 1
        return count

    missing = leading_blank(source) - leading_blank(transformed)
    return "\n" * missing + transformed if missing > 0 else transformed


def _too_slow_to_transform(source: str) -> str | None:
    """Why IPython's transformer is not asked to translate this cell, if it is one of the
    shapes it is known to be slow on."""
    if len(source) > MAX_TRANSFORM_CHARS:
        return (f"the cell does not parse as Python and has {len(source) // 1000} kB, more than the "
                f"{MAX_TRANSFORM_CHARS // 1000} kB of IPython syntax the grader translates")
    magic = sum(1 for line in source.splitlines() if _IPYTHON_LINE.search(line))
    if magic > MAX_IPYTHON_LINES:
        return (f"the cell has {magic} lines of IPython syntax (%magic, !shell, ?), more than the "
                f"{MAX_IPYTHON_LINES} the grader translates")
    return None


# Cell magics whose body IPython runs as ordinary Python in the notebook's namespace.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})


def _python_cell_magic_body(tree: ast.Module) -> str | None:
    """The body of `%%time` (etc.), read from IPython's own translation of the cell:
    `get_ipython().run_cell_magic('time', '', body)`."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    call = tree.body[0].value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "run_cell_magic" and len(call.args) == 3
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args)):
        return None
    name, _, body = (a.value for a in call.args)
    return body if name in PYTHON_CELL_MAGICS else None


def ipython_to_python(source: str) -> str:
    """IPython's own translation of `%magic`, `!cmd` and `obj?` into Python calls. Imported
    lazily: most cells are plain Python and IPython takes a while to import."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - IPython's code on untrusted input: it cannot translate it
        return source


def _statement(cell: int, node: ast.stmt, lines: list[str]) -> _Statement | None:
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    source = "\n".join(lines[first - 1:node.end_lineno]) + "\n"
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        kind = "class" if isinstance(node, ast.ClassDef) else "function"
        return _Statement(cell, node, source, first, kind, (node.name,), _global_names(source) - {node.name})
    if isinstance(node, ast.Import):
        binds = tuple((a.asname or a.name).split(".")[0] for a in node.names)
        return _Statement(cell, node, source, first, "import", binds)
    if isinstance(node, ast.ImportFrom):
        binds = tuple("*" if a.name == "*" else (a.asname or a.name) for a in node.names)
        return _Statement(cell, node, source, first, "import", binds)
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = tuple(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        if names:
            return _Statement(cell, node, source, first, "constant", names,
                              _global_names(source) - set(names))
    return None


def _global_names(source: str) -> frozenset[str]:
    """Names a statement reads from module scope (not its locals, not builtins)."""
    try:
        table = symtable.symtable(source, "<fragment>", "exec")
    except (SyntaxError, ValueError, RecursionError):
        return frozenset()
    names = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    pending = list(table.get_children())
    while pending:
        scope = pending.pop()
        names |= {s.get_name() for s in scope.get_symbols() if s.is_global() and s.is_referenced()}
        pending.extend(scope.get_children())
    return frozenset(names - BUILTINS)


def _with_dependencies(roots, last_binding, statements) -> list[_Statement]:
    kept: dict[int, _Statement] = {}
    unresolved = False
    pending = list(roots)
    while pending:
        statement = pending.pop()
        if id(statement) in kept:
            continue
        kept[id(statement)] = statement
        for name in statement.needs:
            provider = last_binding.get(name)
            if provider is None or "*" in provider.binds:
                unresolved = True
            elif provider.kind != "constant" or _safe_constant(provider, last_binding):
                pending.append(provider)
    if unresolved:  # a name may come from `from module import *`: keep those imports
        for statement in statements:
            if statement.kind == "import" and "*" in statement.binds:
                kept.setdefault(id(statement), statement)
    return list(kept.values())


def _safe_constant(statement: _Statement, last_binding) -> bool:
    """A module-level assignment is kept only if computing it calls no notebook function:
    `KEEP = 0.8` or `EPS = np.float64(1e-8)` are constants; `A3, cache = forward(...)` is a
    test run, never a dependency."""
    for node in ast.walk(statement.node):
        if isinstance(node, ast.Call):
            root = node.func
            while isinstance(root, ast.Attribute):
                root = root.value
            provider = last_binding.get(root.id) if isinstance(root, ast.Name) else None
            if not (isinstance(root, ast.Name) and (root.id in BUILTINS or (provider and provider.kind == "import"))):
                return False
    return True


def _template_untouched(source: str) -> bool:
    """True when every START/END region of the template still holds no code (only comments,
    blank lines, `x = None`, or the template's own hint with a `None` to fill in, such as
    `dW3 = 1./m * np.dot(dZ3, A2.T) + None`)."""
    lines = source.splitlines()
    regions: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        if any(m in line for m in START_MARKERS):
            current = []
            regions.append(current)
        elif any(m in line for m in END_MARKERS):
            current = None
        elif current is not None:
            current.append(line)
    if not regions:
        return False
    for region in regions:
        code = "\n".join(region)
        try:
            tree = parse_python(textwrap.dedent(code))
        except SyntaxError:
            return False
        for node in tree.body:
            placeholder = (isinstance(node, ast.Assign)
                           and any(isinstance(n, ast.Constant) and n.value is None for n in ast.walk(node.value)))
            if not placeholder:
                return False
    return True

