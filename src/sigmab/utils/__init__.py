"""Small helpers shared across sigmab."""
