"""The grader process's own CPU per notebook for the assessment: reading the child's parsed
reply (validation, call records) and judging it (the assignments' diagnose, merging the
probes, line pointers, findings). The children run once, before anything is timed; their
replies are then assessed again and again, so the figures are the parent's alone.

    python benchmarks/assessment_cpu.py [--repeat 5] [--profile 25] [--mutants DIR]
                                        [--trace] [--save FILE | --load FILE]

Grades the example class (and the shared corpus, when ../shared/corpus is there) on every part
of the default course rubric, and prints per notebook: CPU ms of the reply's validation,
of the assessment, and a digest of every finding (verdict, diagnosis, message,
cell, line, points) that must not change when the code gets faster. `--save`/`--load` keep
the children's replies in a file, so that two versions of the grader assess the same replies;
the file holds them as the sandbox sent them (JSON and numeric arrays, sandbox/protocol.py),
never pickled: they are what student code computed.
"""

from __future__ import annotations

import argparse
import dataclasses
import cProfile
import hashlib
import pstats
import statistics
import sys
import time
from pathlib import Path

from dropout_grader.course import load_course
from dropout_grader.extract import extract
from dropout_grader.notebook import NotebookError, parse_code_cells, read_notebook_bytes
from dropout_grader.pipeline import Grader
from dropout_grader.reply import call_record, validate
from dropout_grader.sandbox.batch import SectionRun, run_sections
from dropout_grader.sandbox.protocol import pack, split
from dropout_grader.sandbox.runner import ChildRun

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "real"


def notebooks(mutants: Path | None) -> list[Path]:
    paths = sorted((ROOT / "submissions").glob("*.ipynb"))
    if CORPUS.is_dir():
        paths += sorted(CORPUS.glob("*.ipynb"))
    if mutants is not None:
        paths += write_mutants(mutants)
    return paths


def write_mutants(folder: Path) -> list[Path]:
    """The diagnosis benchmarks' mutant corpora (dropout and L2), as notebooks in `folder`:
    every catalogue entry, so the digest covers every path of the diagnosis."""
    import nbformat

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import mutants
    from l2_mutants import VARIANTS

    folder.mkdir(parents=True, exist_ok=True)
    cells = [(m.name, m.cells) for m in mutants.corpus() + mutants.issue10_mutants()]
    cells += [(f"l2__{v.name}", [v.source]) for v in VARIANTS]
    paths = []
    for name, sources in cells:
        path = folder / f"{name}.ipynb"
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in sources])
        nbformat.write(notebook, path)
        paths.append(path)
    return paths


def run_children(graders: list[Grader], paths: list[Path], trace: bool) -> list[tuple]:
    """(part index, role, notebook, SectionRun) for every function the sandbox runs."""
    jobs = []
    for path in paths:
        try:
            cells = parse_code_cells(read_notebook_bytes(path), path)
        except NotebookError:
            continue
        for index, grader in enumerate(graders):
            extraction = extract(cells, grader.graded_names, grader.transformer)
            for role in grader.rubric.roles:
                if role in extraction.functions:
                    batch = run_sections(grader.sandbox, grader.common_header({}),
                                         [grader.section(role, extraction, trace)],
                                         max_elements=grader.rubric.spec.limits.result_mb * 2**20 // 8)
                    jobs.append((index, role, str(path), batch.sections[0]))
    return jobs


def save_replies(path: Path, traced: bool, jobs: list[tuple]) -> None:
    """One protocol message per job: where it came from, how its child ended, and its reply."""
    messages = [pack({"traced": traced}, {})]
    for index, role, notebook, section in jobs:
        child = {k: v for k, v in dataclasses.asdict(section.child).items() if k != "result"}
        header, arrays = section.reply if section.reply is not None else (None, {})
        messages.append(pack({"index": index, "role": role, "path": notebook, "problem": section.problem,
                              "output": section.output, "output_truncated": section.output_truncated,
                              "child": child, "reply": header}, arrays))
    path.write_bytes(b"".join(messages))


def load_replies(path: Path) -> tuple[bool, list[tuple]]:
    messages, problem = split(path.read_bytes(), max_arrays=10**7, max_elements=10**10)
    if problem or not messages:
        raise SystemExit(f"{path}: not a file --save wrote ({problem or 'empty'})")
    jobs = []
    for header, arrays in messages[1:]:
        reply = (header["reply"], arrays) if header["reply"] is not None else None
        section = SectionRun(ChildRun(**header["child"]), reply, header["problem"], header["output"],
                             header["output_truncated"])
        jobs.append((header["index"], header["role"], header["path"], section))
    return bool(messages[0][0]["traced"]), jobs


def assess_all(graders, jobs, extractions) -> list:
    findings = []
    for grader, run, extraction in decode_all(graders, jobs, extractions):
        findings.append((run.role, [(f.step, f.verdict, f.diagnosis, f.message, f.cell, f.line, f.points)
                                    for f in grader.assess_role(run, extraction)]))
    return findings


def reply_all(jobs) -> None:
    """The reply's validation and call records (decode_run's reading of a parsed reply)."""
    for _, _, _, section in jobs:
        if section.reply is not None:
            header, arrays = section.reply
            reply = validate(header)
            [call_record(c, arrays) for c in reply.calls]


def decode_all(graders, jobs, extractions) -> list:
    return [(graders[index], graders[index].decode(role, section, extractions[(index, path)]),
             extractions[(index, path)]) for index, role, path, section in jobs]


def judge_all(decoded) -> None:
    """The assessment proper: diagnose every probe, merge, point at lines, make findings."""
    for grader, run, extraction in decoded:
        grader.assess_role(run, extraction)


def cpu(function, *args) -> float:
    started = time.process_time()
    function(*args)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions")
    parser.add_argument("--save")
    parser.add_argument("--load")
    parser.add_argument("--trace", action="store_true", help="every call traced (what a wrong function's "
                        "second run costs); by default untraced, as every function's first run")
    parser.add_argument("--mutants", type=Path, help="also the mutant corpora, written to this folder")
    args = parser.parse_args()
    course = load_course(ROOT / "rubrics" / "regularization.yaml")
    graders = [Grader(part, isolation="process") for part in course.parts]
    paths = notebooks(args.mutants)
    if args.load:
        traced, jobs = load_replies(Path(args.load))
    else:
        traced, jobs = args.trace, run_children(graders, paths, args.trace)
        if args.save:
            save_replies(Path(args.save), traced, jobs)
    extractions = {}
    for path in {j[2] for j in jobs}:
        cells = parse_code_cells(read_notebook_bytes(Path(path)), path)
        for index, grader in enumerate(graders):
            extractions[(index, path)] = extract(cells, grader.graded_names, grader.transformer)
    count = len({j[2] for j in jobs})
    findings = assess_all(graders, jobs, extractions)  # warm: caches, imports
    digest = hashlib.sha256(repr(findings).encode()).hexdigest()[:16]
    decoded = decode_all(graders, jobs, extractions)
    times = {"reply": [], "judge": [], "whole": []}
    for _ in range(args.repeat):  # interleaved, so that a loaded machine weighs on each alike
        times["reply"].append(cpu(reply_all, jobs))
        times["judge"].append(cpu(judge_all, decoded))
        times["whole"].append(cpu(assess_all, graders, jobs, extractions))
    ms = {name: 1000 * statistics.median(seconds) / count for name, seconds in times.items()}
    print(f"{count} notebooks, {len(jobs)} function replies ({'traced' if traced else 'untraced'}), "
          f"{len(graders)} parts; CPU ms per notebook, median of {args.repeat}")
    print(f"  reply: validation, call records           {ms['reply']:6.2f}")
    print(f"  assessment: diagnose, merge, findings     {ms['judge']:6.2f}")
    print(f"  all of decode_run + assess_role           {ms['whole']:6.2f}")
    print(f"  findings digest                           {digest}")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        assess_all(graders, jobs, extractions)
        profile.disable()
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(args.profile)
    for grader in graders:
        grader.close()


if __name__ == "__main__":
    main()
