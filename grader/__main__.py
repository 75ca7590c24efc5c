import sys

from dropout_grader.cli import console

console()
