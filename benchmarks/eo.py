"""Benchmark of Earth observation on the data in ../shared/data/eo: runs each part's script in turn and
prints its figures (``name: value unit``) with issue 7's targets beside them.

- ``eo_rice.py``: leave-one-site-out accuracy of the trained and rule-based rice maps, area with CI;
- ``eo_pm25.py``: leave-whole-stations-out R^2 and RMSE of surface PM2.5 over Delhi;
- ``eo_no2.py``: conservation and throughput of the TROPOMI NO2 regridding beside pyresample;
- ``eo_fires.py``: fire counts against the official daily counts.

    python benchmarks/eo.py            # every part
    python benchmarks/eo.py fires no2  # some parts
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ("rice", "pm25", "no2", "fires")


def main() -> None:
    """Run the parts named on the command line (all by default)."""
    wanted = sys.argv[1:] or list(PARTS)
    for part in wanted:
        path = HERE / f"eo_{part}.py"
        if part not in PARTS or not path.is_file():
            print(f"eo_{part}: no such benchmark part (expected one of {', '.join(PARTS)})", flush=True)
            continue
        spec = importlib.util.spec_from_file_location(f"eo_{part}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        t0 = time.perf_counter()
        sys.argv = [str(path)]
        module.main()
        print(f"eo_{part}_benchmark_wall_s: {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
