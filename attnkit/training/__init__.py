"""Internals of :mod:`attnkit.train` (the public entry point); see ``cache`` for the checkpoint cache."""
