"""Rubrics (YAML), shipped with the package so an installed grader finds its default."""
