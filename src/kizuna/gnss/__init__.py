"""Satellite navigation with NavIC and QZSS beside GPS, Galileo and BeiDou: RINEX readers, broadcast orbits
and clocks, single-point positioning, and DOP and availability maps."""
