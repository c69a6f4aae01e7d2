"""Plots (need the ``plots`` extra: matplotlib)."""
