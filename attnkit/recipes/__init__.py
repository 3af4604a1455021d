"""The steps a paper notebook repeats, kept in the package so notebooks only narrate and call.

Each recipe is a thin composition of attnkit's methods (models, trainer, importance, propagation,
metrics) for one experimental setup, with the setting that differs between profiles as arguments.
"""
