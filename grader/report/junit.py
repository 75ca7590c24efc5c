"""junit.xml: a testsuite per submission, a testcase per rubric step, as GitLab's unit-test
report (and most CI dashboards) read it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dropout_grader.results import GRADED, RunResult

ERROR_DIAGNOSES = {"timeout", "memory"}


def render(run: RunResult) -> str:
    suites = ET.Element("testsuites", name=run.rubric_id)
    seeds = " ".join(f"{probe}={seed}" for probe, seed in run.seeds.items())
    for result in run.submissions:
        suite = ET.SubElement(suites, "testsuite", name=_text(result.student), tests=str(len(result.findings)),
                              time=f"{result.seconds:.3f}")
        failures = errors = 0
        for finding in result.findings:
            function = finding.step.split(".")[0]
            case = ET.SubElement(suite, "testcase", classname=_text(f"{result.student}.{function}"),
                                 name=finding.step, time="0")
            properties = ET.SubElement(case, "properties")
            for name, value in (("points", f"{finding.points:g}"), ("max_points", f"{finding.max_points:g}"),
                                ("seed", seeds)):
                ET.SubElement(properties, "property", name=name, value=value)
            where = f" (cell {finding.cell}, line {finding.line})" if finding.cell is not None else ""
            if result.status != GRADED or finding.diagnosis in ERROR_DIAGNOSES:
                errors += 1
                ET.SubElement(case, "error", message=_text(f"{finding.diagnosis}{where}"),
                              type=str(finding.diagnosis)).text = _text(finding.message)
            elif finding.verdict == "wrong":
                failures += 1
                ET.SubElement(case, "failure", message=_text(f"{finding.diagnosis}{where}"),
                              type=str(finding.diagnosis)).text = _text(finding.message)
            elif finding.verdict == "note":
                ET.SubElement(case, "system-out").text = _text(finding.message)
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
        if result.output and run.show_output:
            ET.SubElement(suite, "system-out").text = _text(result.output)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _text(text: str) -> str:
    """XML 1.0 cannot hold most control characters, whatever the escaping: drop them."""
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)
