"""An autograder for machine-learning notebooks that names the wrong step.

Kept import-free: the sandbox's zygote imports `grader.sandbox` and must not pull in the
reference solution, the rubric, or anything heavier than numpy.
"""

__version__ = "0.1.0"
