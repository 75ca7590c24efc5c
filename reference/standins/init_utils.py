"""Grader's stand-in for the course's init_utils module (initialization, same week): the
activations graded code may use; everything else resolves to a stub that fails only if called."""
import numpy as np

from _standin import missing_attribute

__all__ = ["sigmoid", "relu"]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(0, x)


__getattr__ = missing_attribute(__name__)
