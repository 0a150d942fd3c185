"""What every field of kizuna shares: constants, frames, cameras, ephemerides, rasters, I/O, reports,
and parallel execution. Knows no field."""
