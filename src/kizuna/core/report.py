"""The one report builder: a self-contained HTML page (inline CSS, figures embedded as base64 PNG).

Every main command ends with a ``report.html`` that a person opens first. Build it block by block::

    rep = Report("Landing run 1")
    rep.add_key_figures({"final position error (m)": 3.2, "craters matched": 41})
    rep.add_figure(fig, caption="Position error against time")
    rep.add_table(df, caption="Per-image results")
    rep.write(out / "report.html")

All text is HTML-escaped; the page loads nothing from outside.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kizuna.core.io import atomic_write, png_bytes
from kizuna.errors import InputError

__all__ = ["Report"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_CSS = """
:root { --fg: #1d2330; --muted: #5b6474; --line: #d9dee7; --bg: #ffffff; --card: #f5f7fa; --accent: #2f5d9b; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 2rem 1.5rem 4rem; }
h1 { font-size: 1.8rem; margin: 0 0 1.2rem; padding-bottom: .5rem; border-bottom: 3px solid var(--accent); }
h2 { font-size: 1.35rem; margin: 2rem 0 .8rem; }
h3, h4, h5, h6 { font-size: 1.1rem; margin: 1.5rem 0 .6rem; }
p { margin: .6rem 0; max-width: 80ch; white-space: pre-wrap; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr));
  gap: .8rem; margin: 1rem 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .7rem .9rem; }
.card .name { color: var(--muted); font-size: .82rem; }
.card .value { font-size: 1.35rem; font-weight: 600; font-variant-numeric: tabular-nums;
  overflow-wrap: anywhere; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption, caption { color: var(--muted); font-size: .9rem; margin: .4rem 0; text-align: left; }
.table-wrap { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums; }
th, td { padding: .35rem .7rem; border-bottom: 1px solid var(--line); text-align: right; }
th { background: var(--card); font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
tbody tr:hover { background: #eef3fa; }
"""


def _fmt(value: Any) -> str:
    """Format one value for display: floats to 6 significant digits, NaN as an em dash."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        return "\u2014" if math.isnan(v) else f"{v:.6g}"
    return str(value)


class Report:
    """A self-contained HTML report assembled from headings, text, tables, figures and key figures."""

    def __init__(self, title: str) -> None:
        """Start an empty report with the given page title."""
        self.title = str(title)
        self._blocks: list[str] = []

    def add_heading(self, text: str, level: int = 2) -> None:
        """Add a section heading (level 2 to 6; level 1 is the page title)."""
        if not isinstance(level, int) or not 2 <= level <= 6:
            raise InputError(f"report heading level {level!r}: expected an integer from 2 to 6")
        self._blocks.append(f"<h{level}>{html.escape(str(text))}</h{level}>")

    def add_text(self, text: str) -> None:
        """Add a paragraph of plain text (escaped; line breaks kept)."""
        self._blocks.append(f"<p>{html.escape(str(text))}</p>")

    def add_table(self, df_or_mapping: Any, caption: str | None = None) -> None:
        """Add a table from a pandas DataFrame (index shown if named) or a name -> value mapping."""
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        if isinstance(df_or_mapping, Mapping):
            rows = "".join(
                f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>"
                for k, v in df_or_mapping.items()
            )
            body = f"<thead><tr><th>name</th><th>value</th></tr></thead><tbody>{rows}</tbody>"
        elif hasattr(df_or_mapping, "columns") and hasattr(df_or_mapping, "itertuples"):
            df = df_or_mapping
            show_index = any(name is not None for name in df.index.names)
            idx_head = (
                "".join(f"<th>{html.escape(str(n))}</th>" for n in df.index.names) if show_index else ""
            )
            head = idx_head + "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
            out = []
            for idx, *vals in df.itertuples(index=True, name=None):
                cells = ""
                if show_index:
                    keys = idx if isinstance(idx, tuple) else (idx,)
                    cells += "".join(f"<td>{html.escape(_fmt(k))}</td>" for k in keys)
                cells += "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in vals)
                out.append(f"<tr>{cells}</tr>")
            body = f"<thead><tr>{head}</tr></thead><tbody>{''.join(out)}</tbody>"
        else:
            raise InputError(
                f"report table: got {type(df_or_mapping).__name__}; expected a pandas DataFrame or a mapping"
            )
        self._blocks.append(f'<div class="table-wrap"><table>{cap}{body}</table></div>')

    def add_figure(self, fig_or_png: Any, caption: str | None = None, *, dpi: float = 110.0) -> None:
        """Add a figure embedded as base64 PNG: a matplotlib Figure, PNG bytes, or a PNG file path."""
        if isinstance(fig_or_png, bytes | bytearray):
            data = bytes(fig_or_png)
            where = "report figure bytes"
        elif isinstance(fig_or_png, str | os.PathLike):
            path = Path(fig_or_png)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InputError(f"{path}: cannot read the figure file ({exc.strerror or exc})") from exc
            where = str(path)
        elif hasattr(fig_or_png, "savefig"):
            data = png_bytes(fig_or_png, dpi=dpi)
            where = "figure"
        else:
            raise InputError(
                f"report figure: got {type(fig_or_png).__name__}; expected a matplotlib Figure, PNG bytes "
                "or a PNG file path"
            )
        if not data.startswith(_PNG_SIGNATURE):
            raise InputError(f"{where}: not a PNG (missing the PNG signature); expected PNG data")
        b64 = base64.b64encode(data).decode("ascii")
        alt = html.escape(caption or "figure", quote=True)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{b64}">{cap}</figure>')

    def add_key_figures(self, mapping: Mapping[str, Any]) -> None:
        """Add a grid of cards, one per name -> value (numbers shown to 6 significant digits)."""
        if not isinstance(mapping, Mapping):
            raise InputError(f"report key figures: got {type(mapping).__name__}; expected a mapping")
        cards = "".join(
            f'<div class="card"><div class="name">{html.escape(str(k))}</div>'
            f'<div class="value">{html.escape(_fmt(v))}</div></div>'
            for k, v in mapping.items()
        )
        self._blocks.append(f'<div class="cards">{cards}</div>')

    def to_html(self) -> str:
        """Return the whole report as one self-contained HTML5 document."""
        title = html.escape(self.title)
        body = "\n".join(self._blocks)
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n"
            f"<body>\n<main>\n<h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n"
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as HTML to ``path`` atomically and return the path."""
        return atomic_write(path, self.to_html())
