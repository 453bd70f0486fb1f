"""Running a config: the grid of cells, building each cell from its config, executors.

A cell (policy with its parameters x swept values x seed) is independent of every other one, so
a batch of cells runs the same way on any :class:`~autophagy.run.executors.Executor`: inline, in
worker processes, or as Ray tasks.
"""
