"""The ``kizuna eo`` commands: rice mapping (``rice``), surface PM2.5 (``pm25``), TROPOMI NO2 maps
(``no2``) and crop-residue fire counts (``fires``), each group in its own module."""

from __future__ import annotations

import typer

from kizuna.eo.cli_fires import app as fires_app
from kizuna.eo.cli_no2 import app as no2_app
from kizuna.eo.cli_pm25 import app as pm25_app
from kizuna.eo.cli_rice import app as rice_app

__all__ = ["app"]

app = typer.Typer(
    help="Earth observation: rice crop area from Sentinel-1, PM2.5 from AOD, TROPOMI NO2, fire counts.",
    no_args_is_help=True,
)
app.add_typer(rice_app, name="rice")
app.add_typer(pm25_app, name="pm25")
app.add_typer(no2_app, name="no2")
app.add_typer(fires_app, name="fires")
