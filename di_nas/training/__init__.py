"""Training jobs: the search loop, final training of a derived architecture, checkpoints.

Import the modules themselves (``di_nas.training.final``); this package holds no logic.
"""
