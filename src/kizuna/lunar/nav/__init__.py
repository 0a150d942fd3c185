"""Crater-based lunar landing navigation: terrain, rendering, crater detection, map matching, pose,
navigation filter, descent simulation and Monte Carlo campaigns (frame L: east, north, up at the target)."""
