"""Earth observation for rice crop area and air quality: Sentinel-1 rice mapping with honest area
estimates, surface PM2.5 from aerosol optical depth, TROPOMI NO2 maps and crop-residue fire counts."""
