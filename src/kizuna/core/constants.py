"""Physical constants and reference values, SI units.

Sources are named beside each value.
"""

# IAU/LOLA reference sphere radius of the Moon, used by LOLA DEMs and crater catalogues (m).
# LOLA PDS products: "height above a radius of 1737.4 km".
MOON_RADIUS_M = 1_737_400.0

# Lunar gravitational parameter GM (m^3 s^-2): GRAIL GL0660B, 4902.80 km^3 s^-2
# (Konopliv et al. 2013, JGR Planets 118, 1415).
MOON_GM_M3_S2 = 4.902_800_1e12

# Mean surface gravity on the reference sphere (m s^-2), derived from the two values above.
MOON_G0_M_S2 = MOON_GM_M3_S2 / MOON_RADIUS_M**2

# Sidereal rotation rate of the Moon (rad/s): 27.321661 days (IAU WGCCRE 2015: W-dot 13.17635815 deg/day).
MOON_ROTATION_RATE_RAD_S = 13.176_358_15 * 3.141_592_653_589_793 / 180.0 / 86_400.0

# Standard gravity, used to express IMU specifications given in g or micro-g (m s^-2), CGPM 1901.
STANDARD_GRAVITY_M_S2 = 9.806_65

# Astronomical unit (m), IAU 2012 Resolution B2.
AU_M = 149_597_870_700.0

# Solar radius (m), IAU 2015 Resolution B3 nominal value.
SUN_RADIUS_M = 6.957e8

# Speed of light in vacuum (m/s), exact by the SI definition.
SPEED_OF_LIGHT_M_S = 299_792_458.0
