"""Lunar south-pole surface planning: terrain horizons, sunlight and Earth visibility, shadowed regions,
landing sites, rover traverses, night survival and drill sites (maps in a polar stereographic plane)."""
