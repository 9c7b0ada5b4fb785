"""Disturbance immunity: the pure projector math (`math`) and the projector unit.

May import TensorFlow and NumPy only: no model, no loop, no flags.
"""
