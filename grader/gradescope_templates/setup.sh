#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu 22.04,
# Python 3.10). It installs the grader from the wheel beside this file: the only network it
# needs is the package index, for the grader's dependencies.
#
# Overridable for a test or another image: AUTOGRADER_ROOT (default /autograder), GRADER_VENV
# (default $AUTOGRADER_ROOT/grader-venv; reused if it exists), GRADER_PYTHON (default python3),
# GRADER_PIP_OPTIONS (extra pip options), GRADER_SKIP_APT=1 (no apt-get).
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${GRADER_VENV:-$ROOT/grader-venv}"

if [ "${GRADER_SKIP_APT:-0}" != 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # libseccomp2: the grader's seccomp filter for student code.
  apt-get install -y -q --no-install-recommends python3 python3-venv python3-pip libseccomp2
  # bubblewrap adds namespaces to the isolation where the kernel allows them; without it the
  # grader still confines student code (limits, Landlock, seccomp) and says so in its log.
  apt-get install -y -q --no-install-recommends bubblewrap \
    || echo "setup.sh: bubblewrap not installed; grading without namespaces"
fi

if [ ! -x "$VENV/bin/python" ]; then
  "${GRADER_PYTHON:-python3}" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "the grader needs Python 3.10 or newer, this is " + sys.version)'
# shellcheck disable=SC2086 # GRADER_PIP_OPTIONS is a list of options
"$VENV/bin/python" -m pip install -q ${GRADER_PIP_OPTIONS:-} "$HERE"/dropout_grader-*.whl
"$VENV/bin/grade" --version
