"""Crater-based landing navigation: crater ellipses, map-to-image association and camera pose fixes."""
