"""NMEA GGA sentences against a published sentence and the NMEA field layout."""

from __future__ import annotations

import numpy as np

from kizuna.gnss.gtime import utc_to_gpst
from kizuna.gnss.nmea import gga_sentences, nmea_checksum


def test_checksum_of_published_sentence() -> None:
    # NovAtel OEM7 reference manual, GPGGA example:
    # $GPGGA,134658.00,5106.9792,N,11402.3003,W,2,09,1.0,1048.47,M,-16.27,M,08,AAAA*60
    assert (
        nmea_checksum("GPGGA,134658.00,5106.9792,N,11402.3003,W,2,09,1.0,1048.47,M,-16.27,M,08,AAAA") == "60"
    )


def test_gga_fields() -> None:
    t = utc_to_gpst(np.datetime64("2021-03-19T11:59:42"))
    lines = gga_sentences([t, t + 1], [35.5, np.nan], [-139.25, 0.0], [46.5, 0.0], [12, 0], [0.8, 1.0])
    assert len(lines) == 1  # the unsolved epoch is left out
    body, star = lines[0][1:].split("*")
    f = body.split(",")
    # 35.5 deg = 35 deg 30.00000 min north; -139.25 deg = 139 deg 15 min west; UTC 11:59:42.
    assert f[1] == "115942.00" and f[2:6] == ["3530.00000", "N", "13915.00000", "W"]
    assert f[6:9] == ["1", "12", "0.8"] and f[9] == "46.500"
    assert star == nmea_checksum(body)
