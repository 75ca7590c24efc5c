"""Shared by the stand-in modules: names the course's helper modules define but that graded
code has no business calling (plots, data loaders, test cases) resolve to a stub, so that
`from reg_utils import plot_decision_boundary` still imports and only a call fails."""


def missing_attribute(module: str):
    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError(
                f"{module}.{name} is not available while grading: the graded functions "
                "should compute their result without it")

        unavailable.__name__ = name
        return unavailable

    return __getattr__
