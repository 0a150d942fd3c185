"""Space situational awareness: element sets, SGP4 propagation, conjunction screening, collision
probability and CCSDS conjunction data messages."""
