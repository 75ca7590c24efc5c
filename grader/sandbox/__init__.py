"""Running student code in isolation: `runner` (grader side) starts a `zygote` that forks a
child per job; the child runs `harness`, which uses `recorder` to watch the code, and both
sides speak `protocol`. Nothing here may import the reference solution or the rubric."""
