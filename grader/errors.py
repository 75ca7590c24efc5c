"""Errors a front end reports in one line, defined apart from the modules that raise them so
that catching one does not import a database layer."""


class GradebookError(Exception):
    """The gradebook's database cannot be opened or written; the message says which and why."""
