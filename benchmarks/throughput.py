"""How fast is grading a class, next to the floor and to executing notebooks with a kernel.

    python benchmarks/throughput.py [-n 1000] [--repeat 1] [--sample 10]
    python benchmarks/throughput.py --memory-run 100000 [--memory-run 10000 ...]

Builds a class of N real-sized notebooks (the example class's code, each with image outputs of
about 300 KB), then prints, measured in this one run:
- notebooks/s and the median per-notebook time of `grade DIR` with -j 1 and -j 2 (the CLI,
  reports included, a fresh gradebook);
- the floor: a loop that only reads each notebook and execs its functions in this process,
  unsandboxed, calling each once; and our ratio to it;
- the same notebooks executed whole with nbclient (the nbgrader/Otter model) on a sample, and
  our speed-up over it (needs `pip install nbclient ipykernel`; skipped otherwise);
- an unchanged second run (every notebook reused from the gradebook);
- peak RSS of the grader's processes, and the cold wall time of `grade one.ipynb`;
- the cost of the annotated notebook pages (feedback/<student>.notebook.html): the same -j 2
  run with --no-notebook-html as the baseline, and the median render time per notebook.
Times are medians over --repeat runs; every figure comes from this machine, now.

`--memory-run N` (repeatable) instead grades a class of N small synthetic notebooks (the example
class's notebooks without outputs, one folder per student, a hundred sections) with `grade -j 2`,
then regrades it unchanged, and prints the peak RSS of the grader's own process and of its
whole process tree, sampled from /proc while it runs (ru_maxrss of children would be the
largest of ALL descendants, the sandbox's included); the figures should not grow with N.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GRADE = str(Path(sys.executable).with_name("grade"))
TARGETS = {"j2_rate": 100, "floor_ratio": 4, "nbclient_speedup": 50, "rerun_seconds": 2, "rss_mb": 300, "cold_seconds": 0.6}


def build_class(folder: Path, count: int) -> list[Path]:
    """`count` notebooks cycling through the example class, each with ~300 KB of images."""
    sources = sorted(p for p in (ROOT / "submissions").glob("*.ipynb") if p.name != "unreadable.ipynb")
    rng = np.random.default_rng(0)
    image = base64.b64encode(rng.integers(0, 256, 225_000, dtype=np.uint8).tobytes()).decode()
    paths = []
    for i in range(count):
        notebook = nbformat.read(sources[i % len(sources)], as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": image})]
                break
        path = folder / f"student{i:05d}.ipynb"
        nbformat.write(notebook, path)
        paths.append(path)
    return paths


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    return time.perf_counter() - started, completed


def grade_run(folder: Path, out: Path, jobs: int, extra: list[str] = ()) -> tuple[float, float]:
    """Wall seconds of a fresh `grade` run, and the median per-notebook seconds it reports."""
    shutil.rmtree(out, ignore_errors=True)
    seconds, completed = timed([GRADE, str(folder), "--out", str(out), "-q", "-j", str(jobs), *extra])
    if completed.returncode != 0:
        raise SystemExit(f"grade failed: {completed.stderr[-2000:]}")
    per = [s["seconds"] for s in json.loads((out / "results.json").read_text())["submissions"]]
    return seconds, statistics.median(per)


def floor(paths: list[Path]) -> float:
    """Read each notebook and exec its graded functions here, unsandboxed, calling each once."""
    sys.path.insert(0, str(ROOT / "reference" / "standins"))
    from dropout_grader.reference.dropout import call_arguments, make_probe

    probe = make_probe(1, [3, 48, 32, 1], 40, 0.7)
    started = time.perf_counter()
    for path in paths:
        notebook = json.loads(path.read_text())
        namespace: dict = {}
        for cell in notebook["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and "def " in source and "%" not in source:
                try:
                    exec(compile(source, str(path), "exec"), namespace)
                except Exception:  # noqa: BLE001 - broken notebooks are part of the class
                    pass
        for role, name in (("forward", "forward_propagation_with_dropout"), ("backward", "backward_propagation_with_dropout")):
            try:
                namespace[name](*call_arguments(role, probe))
            except Exception:  # noqa: BLE001
                pass
    return time.perf_counter() - started


def nbclient_seconds(paths: list[Path]) -> float | None:
    try:
        import nbclient  # noqa: F401
        import ipykernel  # noqa: F401
    except ImportError:
        return None
    from nbclient import NotebookClient

    env_path = str(ROOT / "reference" / "standins")
    started = time.perf_counter()
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = env_path
        try:
            NotebookClient(notebook, timeout=60, kernel_name="python3", allow_errors=True,
                           resources={"metadata": {"path": env_path}}).execute()
        finally:
            if old is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old
    return (time.perf_counter() - started) / len(paths)


def notebook_pages(folder: Path, work: Path, sample: list[Path], with_pages: float, repeat: int) -> None:
    """What the annotated notebook pages cost: end to end against --no-notebook-html, and per page."""
    from dropout_grader.pipeline import Grader
    from dropout_grader.report import notebook_html
    from dropout_grader.results import Submission
    from dropout_grader.rubric import load_rubric

    without = statistics.median(grade_run(folder, work / "out-nopages", 2, ["--no-notebook-html"])[0]
                                for _ in range(repeat))
    with Grader(load_rubric()) as grader:
        run = grader.run_result(list(grader.grade_all([Submission(p.stem, str(p)) for p in sample])))
    renderer = notebook_html.NotebookRenderer()
    times = []
    for result in run.submissions:
        data = notebook_html.read_notebook_bytes(Path(result.path))
        started = time.perf_counter()
        renderer.render(run, result, data, "k", {})
        times.append(time.perf_counter() - started)
    print(f"notebook pages: grade -j 2 {with_pages:.1f} s with them, {without:.1f} s without "
          f"(+{(with_pages - without) / len(list(folder.glob('*.ipynb'))) * 1000:.0f} ms per notebook end to end); "
          f"render {statistics.median(times) * 1000:.0f} ms per page (median of {len(times)}, one core); "
          "an unchanged page is not rendered again")


def build_small_class(folder: Path, count: int) -> None:
    """`count` notebooks without outputs, cycling through the example class, in
    folder/sectionNN/studentNNNNNN/hw.ipynb (a flat folder of 100,000 would be listed once
    per notebook for the student's own helper modules)."""
    sources = [p.read_bytes() for p in sorted((ROOT / "submissions").glob("*.ipynb"))]
    for i in range(count):
        student = folder / f"section{i % 100:02d}" / f"student{i:06d}"
        student.mkdir(parents=True)
        (student / "hw.ipynb").write_bytes(sources[i % len(sources)])


def _tree_rss(root: int) -> tuple[int, int]:
    """RSS in bytes of `root` itself, and the PSS of `root` and all its descendants together
    (PSS shares each page among the processes mapping it: forked sandbox children share most
    of the zygote's pages, which a sum of RSS would count once per child)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree = {root}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    own = total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
                fields = dict(line.split(b":", 1) for line in handle.read().splitlines()[1:] if b":" in line)
        except OSError:
            continue
        total += int(fields[b"Pss"].split()[0]) * 1024
        if pid == root:
            own = int(fields[b"Rss"].split()[0]) * 1024
    return own, total


def sampled_run(command: list[str], every: float = 0.25) -> tuple[float, int, int, subprocess.CompletedProcess]:
    """Wall seconds, peak RSS of the process and of its process tree (sampled), and its output."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    own = tree = 0
    while process.poll() is None:
        mine, everything = _tree_rss(process.pid)
        own, tree = max(own, mine), max(tree, everything)
        time.sleep(every)
    out, err = process.communicate()
    return time.perf_counter() - started, own, tree, subprocess.CompletedProcess(command, process.returncode, out, err)


def memory_run(count: int) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"memory-{count}-"))
    try:
        build_small_class(work / "class", count)
        command = [GRADE, str(work / "class"), "--out", str(work / "out"), "-q", "-j", "2"]
        figures = []
        for label in ("graded", "unchanged re-run"):
            seconds, own, tree, completed = sampled_run(command)
            if completed.returncode not in (0, 1):
                raise SystemExit(f"grade failed ({completed.returncode}): {completed.stderr[-2000:]}")
            figures.append(f"{label} {seconds:.0f} s: peak RSS {own / 2**20:.0f} MB grader process, "
                           f"{tree / 2**20:.0f} MB whole tree (PSS)")
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"memory run, {count} notebooks: " + "; ".join(figures)
              + f"; ru_maxrss of any descendant {children:.0f} MB (target <= {TARGETS['rss_mb']} MB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="notebooks in the class (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each class-sized measure (median)")
    parser.add_argument("--sample", type=int, default=10, help="notebooks executed with nbclient")
    parser.add_argument("--memory-run", type=int, action="append", metavar="N",
                        help="only the memory run: grade N small synthetic notebooks, print peak RSS (repeatable)")
    args = parser.parse_args()
    if args.memory_run:
        for count in args.memory_run:
            memory_run(count)
        return
    work = Path(tempfile.mkdtemp(prefix="throughput-"))
    try:
        folder = work / "class"
        folder.mkdir()
        paths = build_class(folder, args.n)
        size = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        print(f"class: {args.n} notebooks, {size:.0f} KB each on average; {os.cpu_count()} cores")
        rows = {}
        for jobs in (1, 2):
            runs = [grade_run(folder, work / f"out-j{jobs}", jobs) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            rows[jobs] = (args.n / wall, statistics.median(r[1] for r in runs), wall)
            print(f"grade -j {jobs}: {rows[jobs][0]:.1f} notebooks/s, median {rows[jobs][1] * 1000:.0f} ms per notebook, "
                  f"{wall:.1f} s wall")
        floor_seconds = statistics.median(floor(paths) for _ in range(max(1, args.repeat)))
        floor_rate = args.n / floor_seconds
        print(f"floor (read + exec + call once, in-process, unsandboxed): {floor_rate:.1f} notebooks/s; "
              f"grade -j 2 takes {floor_rate / rows[2][0]:.1f}x the floor's time (target <= {TARGETS['floor_ratio']}x)")
        per_notebook = nbclient_seconds(paths[:args.sample])
        if per_notebook is None:
            print("nbclient: not installed (pip install nbclient ipykernel) - skipped")
        else:
            print(f"nbclient executing whole notebooks: {per_notebook:.2f} s per notebook (sample of {args.sample}); "
                  f"grade -j 2 is {per_notebook * rows[2][0]:.0f}x faster (target >= {TARGETS['nbclient_speedup']}x)")
        # The first re-run after a grading rewrites the class reports once (every result now
        # says "reused"); the ones after it find every report's inputs unchanged.
        reruns = [timed([GRADE, str(folder), "--out", str(work / "out-j2"), "-q", "-j", "2"])[0]
                  for _ in range(max(2, args.repeat + 1))]
        rerun = statistics.median(reruns[1:])
        print(f"unchanged re-run (all reused from the gradebook): {rerun:.2f} s (target <= {TARGETS['rerun_seconds']} s); "
              f"the first one after the grading, which rewrites the class reports once: {reruns[0]:.2f} s")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS of any grader process: {peak:.0f} MB (target <= {TARGETS['rss_mb']} MB)")
        one = work / "one"
        cold = statistics.median(timed([GRADE, str(paths[0]), "--out", str(one), "-q", "--regrade"])[0] for _ in range(5))
        print(f"cold `grade one.ipynb`: {cold:.2f} s, median of 5 (target <= {TARGETS['cold_seconds']} s)")
        notebook_pages(folder, work, paths[:args.sample * 5], rows[2][2], args.repeat)
        print(f"grade -j 2: {rows[2][0]:.1f} notebooks/s (target >= {TARGETS['j2_rate']})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
