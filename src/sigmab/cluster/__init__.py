"""Clustering of calibration activations (spherical k-means)."""

from sigmab.cluster.spherical_kmeans import KMeansResult, assign, spherical_kmeans

__all__ = ["KMeansResult", "assign", "spherical_kmeans"]
