"""Grader's stand-in for the course's public_tests module: test helpers are not needed to grade."""
from _standin import missing_attribute

__all__: list[str] = []

__getattr__ = missing_attribute(__name__)
