"""Errors a front end reports in one line, defined apart from the modules that raise them so
that catching one does not import a database layer."""


class GradebookError(Exception):
    """The gradebook's database cannot be opened or written; the message says which and why."""


class GradingError(Exception):
    """The grader itself (or its sandbox) failed on a submission: never the student's fault.
    The pipeline turns it into a `grading_error` result, which is never stored as a grade."""


class GradingInterrupted(GradingError):
    """The run was stopped (Ctrl-C) while this submission was being graded."""
