"""Parent side: run several sections (each a graded function of one assignment, with the
statements it needs, its calls and inputs) of one notebook in as few children as possible.

One child per notebook is the common case: it runs every section in order and writes each
section's reply as soon as it is known. When a child ends without answering every section
(it crashed, ran out of time or memory, or its replies turn malformed), the section it was on
is charged only if it was the first section of that child: it had the whole child to itself,
limits included, as when every function had a child of its own. Otherwise that section and
the rest run again in a new child. So a crash in one function still tells which, and nothing
one section does (a leak, a stray thread, a busy loop) is charged to another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dropout_grader.sandbox.protocol import Archive, ProtocolError, pack, split
from dropout_grader.sandbox.runner import ChildRun, Sandbox


@dataclass(frozen=True)
class Section:
    """What the child needs for one graded function: `header` ({"fragments", "calls",
    "trace"}) and the arrays its calls name (archived once per run and shared)."""
    header: dict
    arrays: Archive


@dataclass
class SectionRun:
    """One section's outcome. `reply` is its parsed message when the child gave one; otherwise
    `child` says how the child that ran it (first) ended, and `problem` why no reply was read."""
    child: ChildRun
    reply: tuple[dict, dict[str, np.ndarray]] | None = None
    problem: str = ""
    output: str = ""  # the child's output, given to the first section it ran ("" for the others)
    output_truncated: bool = False


@dataclass
class BatchRun:
    sections: list[SectionRun] = field(default_factory=list)
    children: int = 0


def job(common: dict, sections: list[Section]) -> bytes:
    """The job's bytes: the common header, then each section's message."""
    return pack(common, {}) + b"".join(pack(s.header, s.arrays) for s in sections)


def run_sections(sandbox: Sandbox, common: dict, sections: list[Section], max_elements: int,
                 stopping=lambda: False) -> BatchRun:
    """Run every section, in order, in as few children as the sections allow (see above).
    Raises SandboxError when the sandbox itself fails."""
    batch = BatchRun()
    start = 0
    while start < len(sections):
        if stopping():
            break
        child = sandbox.run(job(common, sections[start:]))
        batch.children += 1
        replies, problem = split(child.result, max_elements=max_elements)
        # The first reply is written before any student code runs: what confines the child.
        if replies and _is_protections(replies[0][0]):
            answered = _answered(replies[1:], len(sections) - start)
        else:
            answered = []
        for reply in answered:
            batch.sections.append(SectionRun(child, reply))
        if not answered or answered[0][0].get("out_of_memory") is True:
            # The first section of this child did not answer (or ran out of memory): charged.
            if not answered:
                batch.sections.append(SectionRun(child, None, problem))
            start += 1
        else:
            start += len(answered)
        first = batch.sections[-(len(answered) or 1)]
        first.output, first.output_truncated = child.output, child.output_truncated
    return batch


def _is_protections(header: dict) -> bool:
    return "section" not in header and isinstance(header.get("protections"), list)


def _answered(replies: list, asked: int) -> list:
    """The section replies in order (section 0, 1, ...) up to the first one out of place."""
    answered = []
    for header, arrays in replies[:asked]:
        if header.get("section") != len(answered):
            break
        answered.append((header, arrays))
        if header.get("out_of_memory") is True:
            break  # nothing after it
    return answered




def probe_protections(sandbox: Sandbox, common: dict) -> list[dict]:
    """What confines a child on this machine, from an empty job (no student code runs)."""
    replies, problem = split(sandbox.run(job(common, [])).result)
    if not replies or not _is_protections(replies[0][0]):
        raise ProtocolError(problem or "the child did not say how it is confined")
    return [p for p in replies[0][0]["protections"] if isinstance(p, dict)]
