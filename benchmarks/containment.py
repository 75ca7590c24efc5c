"""What happens to hostile code, per isolation mode available here.

    python benchmarks/containment.py [--mode process|bwrap]

For each behaviour in hostile_cases.py and each mode ("process": child with rlimits, dropped
capabilities, Landlock and seccomp; "bwrap": the same inside bubblewrap), grades the notebook
alone and prints the verdict, whether it was contained (nothing printed 'ESCAPED' nor any line
of the answer key, canary intact, no listener contacted, no SysV IPC object left, no process
left behind, the child's folder removed) and the time to the verdict. The first line says which
install of dropout_grader ran (editable checkout, wheel, --user).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile_cases  # noqa: E402

from dropout_grader.pipeline import Grader  # noqa: E402
from dropout_grader.results import Submission  # noqa: E402
from dropout_grader.rubric import DEFAULT_RUBRIC, load_rubric  # noqa: E402
from dropout_grader.sandbox.runner import bubblewrap_works  # noqa: E402

LIMITS = {"cpu_seconds": 2, "wall_seconds": 4, "memory_mb": 512, "output_kb": 16, "result_mb": 8}


def write_notebook(path: Path, *cells: str) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    return path


def leftovers(root: str) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "cwd").startswith(root + "/job-"):
                count += 1
        except OSError:
            pass
    return count


SLOW = {"infinite_loop", "sleep_forever", "ignore_sigterm", "gradual_growth", "print_a_gigabyte",
        "many_megabyte_files", "nested_folders"}


def run_mode(mode: str, folder: Path, quick: bool = False) -> list[tuple[str, str, bool, float]]:
    data = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    data["limits"] = LIMITS
    rubric_path = folder / "rubric.yaml"
    rubric_path.write_text(yaml.safe_dump(data))
    canary = folder / "canary.txt"
    canary.write_text("untouched")
    other = write_notebook(folder / "other.ipynb", hostile_cases.IMPORTS, hostile_cases.GOOD)
    services = hostile_cases.listeners(folder)
    ctx = hostile_cases.context(folder, other, canary, services)
    key = hostile_cases.answer_key_text()
    rows = []
    with Grader(load_rubric(rubric_path), isolation=mode) as grader:
        seccomp = any(p["name"] == "seccomp" and p["active"] for p in grader.protections)
        print(f"{mode}: in force: {', '.join(p['name'] for p in grader.protections if p['active'])}; "
              f"missing: {', '.join(p['name'] for p in grader.protections if not p['active']) or 'none'}")
        for name, case in hostile_cases.cases(ctx).items():
            if quick and name in SLOW:
                continue
            if name == "kill_everyone" and not seccomp:
                rows.append((name, "skipped (no seccomp here)", True, 0.0))
                continue
            path = write_notebook(folder / f"{name}.ipynb", hostile_cases.IMPORTS, hostile_cases.notebook_source(case))
            started = time.monotonic()
            result = grader.grade(Submission(name, str(path)))
            seconds = time.monotonic() - started
            outcome = next(f for f in result.findings if f.step == "forward.function")
            contained = ("ESCAPED" not in result.output and not hostile_cases.leaked(result.output, key)
                         and canary.read_text() == "untouched" and not services.heard()
                         and not hostile_cases.ipc_objects() and leftovers(grader.sandbox._root) == 0
                         and not os.listdir(grader.sandbox._root))
            wrong = next((f for f in result.findings if f.verdict == "wrong" and f.step.startswith("forward")), None)
            verdict = (outcome.diagnosis or (f"{wrong.step.split('.')[-1]}: {wrong.diagnosis}" if wrong else None)
                       or "ran; attempt blocked")
            rows.append((name, verdict, contained, seconds))
    services.close()
    return rows


def install_kind() -> str:
    import dropout_grader

    where = os.path.dirname(dropout_grader.__file__)
    if not any(part in where for part in ("site-packages", "dist-packages")):
        return f"editable checkout ({where})"
    return f"{'--user install' if where.startswith(os.path.expanduser('~')) else 'installed wheel'} ({where})"


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("process", "bwrap"), action="append")
    parser.add_argument("--quick", action="store_true",
                        help="leave out the behaviours that run into the wall clock (the same in every install)")
    arguments = parser.parse_args()
    modes = arguments.mode or ["process"] + (["bwrap"] if bubblewrap_works() else [])
    table: dict[str, dict[str, tuple[str, bool, float]]] = {}
    for mode in modes:
        with tempfile.TemporaryDirectory() as folder:
            for name, verdict, contained, seconds in run_mode(mode, Path(folder), arguments.quick):
                table.setdefault(name, {})[mode] = (verdict, contained, seconds)
    print(f"dropout_grader: {install_kind()}; python {sys.version.split()[0]}; "
          f"Linux {os.uname().release}; running as uid {os.getuid()}")
    print(f"limits: {LIMITS}; modes: {', '.join(modes)}")
    header = f"{'behaviour':32}" + "".join(f"{mode + ': verdict':>28}{'contained':>11}{'s':>7}" for mode in modes)
    print(header)
    for name, by_mode in table.items():
        row = f"{name:32}"
        for mode in modes:
            verdict, contained, seconds = by_mode[mode]
            row += f"{verdict:>28}{('yes' if contained else 'NO'):>11}{seconds:>7.2f}"
        print(row)
    escaped = [n for n, by_mode in table.items() for m in modes if not by_mode[m][1]]
    print(f"{len(table)} behaviours x {len(modes)} modes: {'all contained' if not escaped else 'NOT contained: ' + ', '.join(escaped)}")


if __name__ == "__main__":
    main()
