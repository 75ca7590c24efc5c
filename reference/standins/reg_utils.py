"""Grader's stand-in for the course's reg_utils module: the activations graded code uses."""
import numpy as np

from _standin import missing_attribute

__all__ = ["sigmoid", "relu", "compute_cost"]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(0, x)


def compute_cost(a3, Y):
    """The course's cross-entropy cost (the L2 exercise's cost calls it): mean log loss."""
    m = Y.shape[1]
    logprobs = np.multiply(-np.log(a3), Y) + np.multiply(-np.log(1 - a3), 1 - Y)
    return 1. / m * np.nansum(logprobs)


__getattr__ = missing_attribute(__name__)
