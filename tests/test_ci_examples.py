"""The CI examples a course copies must work on today's runners and agree with the CLI."""

from __future__ import annotations

import shlex

import pytest
import yaml

from conftest import ROOT
from dropout_grader.cli import build_parser

EXAMPLES = ROOT / "examples" / "ci"


def commands(name: str) -> list[str]:
    data = yaml.safe_load((EXAMPLES / name).read_text())
    if name.startswith("github"):
        return [step["run"] for job in data["jobs"].values() for step in job["steps"] if "run" in step]
    job = data["grade"]
    return [line for key in ("before_script", "script") for line in job[key]]


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_packages_are_installed_after_an_update(name):
    text = "\n".join(commands(name))
    assert "apt-get install" in text
    assert text.index("apt-get update") < text.index("apt-get install")


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_the_grade_command_parses_and_the_bar_is_the_rubrics_total(name):
    grade = [c for c in commands(name) if c.startswith("grade ")]
    assert len(grade) == 1
    args = build_parser().parse_args(shlex.split(grade[0])[1:])
    assert args.fail_under.percent and args.fail_under.value == 100


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_the_examples_say_they_are_formative(name):
    assert "FORMATIVE" in (EXAMPLES / name).read_text()


def test_bubblewrap_on_ubuntu_24_04_lifts_apparmors_restriction():
    data = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    assert data["jobs"]["grade"]["runs-on"] == "ubuntu-24.04"
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in "\n".join(commands("github-actions.yml"))
