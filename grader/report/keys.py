"""What a report is made from, as a digest: a report whose key is unchanged is not made again.

The grader's build id (build.py) leaves the report code out on purpose (a new template must not
regrade a class), so every report key also carries `report_digest`: the report modules and
templates of this install."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

from dropout_grader.results import RunResult

REPORT = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def report_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in REPORT.rglob("*") if p.is_file() and p.suffix in (".py", ".j2", ".css", ".json")):
        digest.update(path.relative_to(REPORT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def key(*parts) -> str:
    """One digest of `parts` (JSON-able values)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def header_key(run: RunResult, *options) -> str:
    """Everything of the run but its submissions and its protections, the report code, and
    `options`. The protections are this machine's sandbox, which grades only what changed: a
    run that graded nothing keeps the reports (and the protections they name) of the run that
    graded; a run that graded anything has a new result, so new class reports."""
    own = {f.name: getattr(run, f.name) for f in fields(run) if f.name not in ("submissions", "protections")}
    return key(own, report_digest(), options)
