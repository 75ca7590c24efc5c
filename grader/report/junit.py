"""junit.xml: a testsuite per submission, a testcase per visible rubric step, as GitLab's unit
test report (and most CI dashboards) read it.

GitLab's conventions (docs.gitlab.com/ci/testing/unit_test_reports): the testcase's
`classname` is shown as the suite and `name` as the test, so the pair must be unique (only the
first of duplicates is kept); `failure`, `error` and `skipped` are read from their element text;
`system-out` only inside a testcase. A step that was not assessed is `<skipped/>`, not a pass.
GitLab shows the report on the student's pipeline, so hidden rubric steps are left out; every
string is reduced to the characters XML 1.0 allows."""

from __future__ import annotations

import shutil
import tempfile
import xml.etree.ElementTree as ET
from typing import TextIO

from dropout_grader.report import audience, neutral
from dropout_grader.results import GRADED, RunResult, SubmissionResult

ERROR_DIAGNOSES = {"timeout", "memory"}
NOT_ASSESSED = "not_assessed"


class Writer:
    """junit.xml onto `handle`, one submission (already cleaned by neutral) at a time. The
    root element carries the class's totals, known only at the end: the suites are spooled to
    a temporary file meanwhile, never held in memory."""

    def __init__(self, handle: TextIO, run: RunResult):
        self.handle = handle
        self.run = run
        self.seeds = " ".join(f"{probe}={seed}" for probe, seed in run.seeds.items())
        self.totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
        self.spool = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
        self.count = 0

    def add(self, result: SubmissionResult) -> None:
        suite = _suite(self.run, result, self.seeds, self.totals)
        ET.indent(suite, level=1)  # as ET.indent would indent it inside the whole document
        self.spool.write("\n  " + ET.tostring(suite, encoding="unicode"))
        self.count += 1

    def close(self) -> None:
        root = ET.Element("testsuites", name=_text(self.run.rubric_id))
        for key, value in self.totals.items():
            root.set(key, str(value))
        self.handle.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        if not self.count:
            self.handle.write(ET.tostring(root, encoding="unicode") + "\n")
        else:
            root.text = "\n"
            start = ET.tostring(root, encoding="unicode")
            self.handle.write(start[:start.index(">") + 1])  # attribute values escape ">"
            self.spool.seek(0)
            shutil.copyfileobj(self.spool, self.handle)
            self.handle.write("\n</testsuites>\n")
        self.spool.close()


def render(run: RunResult) -> str:
    return neutral.render_whole(Writer, run)


def _suite(run: RunResult, result: SubmissionResult, seeds: str, totals: dict[str, int]) -> ET.Element:
    suite = ET.Element("testsuite", name=_text(result.student), time=f"{result.seconds:.3f}")
    counts = dict.fromkeys(totals, 0)
    findings = audience.visible_findings(run, result)
    for finding in findings:
        counts["tests"] += 1
        function = finding.step.split(".")[0]
        case = ET.SubElement(suite, "testcase", classname=_text(f"{result.student}.{function}"),
                             name=_text(finding.step), file=_text(result.path), time="0")
        properties = ET.SubElement(case, "properties")
        for name, value in (("points", f"{finding.points:g}"), ("max_points", f"{finding.max_points:g}"),
                            ("seed", seeds)):
            ET.SubElement(properties, "property", name=name, value=_text(value))
        where = f" (cell {finding.cell + 1}, line {finding.line})" if finding.cell is not None else ""
        if result.status != GRADED or finding.diagnosis in ERROR_DIAGNOSES:
            counts["errors"] += 1
            ET.SubElement(case, "error", message=_text(f"{finding.diagnosis}{where}"),
                          type=_text(str(finding.diagnosis))).text = _text(finding.message)
        elif finding.diagnosis == NOT_ASSESSED:
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=_text(finding.message)).text = _text(finding.message)
        elif finding.verdict == "wrong":
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=_text(f"{finding.diagnosis}{where}"),
                          type=_text(str(finding.diagnosis))).text = _text(finding.message)
        elif finding.verdict == "note":
            ET.SubElement(case, "system-out").text = _text(finding.message)
    if result.output and run.show_output and findings:
        # GitLab reads system-out only inside a testcase: the first one carries it.
        out = suite.find("testcase").find("system-out")
        out = out if out is not None else ET.SubElement(suite.find("testcase"), "system-out")
        out.text = _text("\n\n".join(filter(None, [out.text, "What your code printed:\n" + result.output])))
    for key, value in counts.items():
        suite.set(key, str(value))
        totals[key] += value
    return suite


def _text(text: str) -> str:
    """Only what XML 1.0 can hold (the cleaned text already is; this holds for any text)."""
    return neutral.xml(text)
