"""Tests of kizuna.core.report: a self-contained, escaped, well-formed HTML report."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from kizuna.core.io import write_png
from kizuna.core.report import Report
from kizuna.errors import InputError

# HTML5 void elements (WHATWG HTML Living Standard, section 13.1.2): they have no end tag.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _TagChecker(HTMLParser):
    """Collects start/end tags and checks that every non-void element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(dict(attrs))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(html_text: str) -> _TagChecker:
    checker = _TagChecker()
    checker.feed(html_text)
    checker.close()
    return checker


def _figure() -> Figure:
    fig = Figure(figsize=(3, 2))
    fig.subplots().plot(np.arange(5), np.arange(5) ** 2)
    return fig


def test_report_is_well_formed_self_contained_and_escaped(tmp_path):
    rep = Report("Run <1> & co")
    rep.add_heading("Results", level=2)
    rep.add_text("a < b and <script>alert(1)</script>")
    rep.add_key_figures(
        {"position error (m)": 3.14159265, "craters": np.int64(41), "nan value": float("nan")}
    )
    df = pd.DataFrame({"name": ["x", "y<z"], "value (m)": [1.0, 2.5e-7]})
    rep.add_table(df, caption="Per-image results")
    rep.add_table({"alpha": 1, "beta": "two"})
    rep.add_figure(_figure(), caption="Error vs time", dpi=40)
    text = rep.to_html()

    parsed = _parse(text)
    assert parsed.errors == [] and parsed.stack == []
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<title>Run &lt;1&gt; &amp; co</title>" in text
    # Self-contained: no link to anything outside the page.
    assert "http://" not in text and "https://" not in text and "<link" not in text
    assert all(img["src"].startswith("data:image/png;base64,") for img in parsed.imgs)
    all_text = "".join(parsed.text)
    assert "3.14159" in all_text and "41" in all_text and "y<z" in all_text and "2.5e-07" in all_text
    # 2 data rows + 1 header row in the DataFrame table, 2 + 1 in the mapping table.
    assert parsed.tags.count("tr") == 6
    assert text.count('class="card"') == 3


def test_embedded_figure_decodes_to_the_png_written(tmp_path):
    rep = Report("Figures")
    rep.add_figure(_figure(), dpi=40)
    write_png(tmp_path / "a.png", np.full((3, 4), 200, dtype=np.uint8))
    rep.add_figure(tmp_path / "a.png", caption="from file")
    rep.add_figure((tmp_path / "a.png").read_bytes(), caption="from bytes")
    srcs = re.findall(r'src="data:image/png;base64,([^"]+)"', rep.to_html())
    assert len(srcs) == 3
    with Image.open(io.BytesIO(base64.b64decode(srcs[0]))) as im:
        assert im.size == (120, 80)  # 3 in x 40 dpi, 2 in x 40 dpi
    assert base64.b64decode(srcs[1]) == (tmp_path / "a.png").read_bytes()
    assert srcs[1] == srcs[2]


def test_report_write_is_the_html(tmp_path):
    rep = Report("R")
    rep.add_text("hello")
    path = rep.write(tmp_path / "out" / "report.html")
    assert path.read_text(encoding="utf-8") == rep.to_html()


def test_report_bad_input(tmp_path):
    rep = Report("R")
    with pytest.raises(InputError, match="missing.png"):
        rep.add_figure(tmp_path / "missing.png")
    with pytest.raises(InputError, match="PNG"):
        rep.add_figure(b"GIF89a not a png")
    with pytest.raises(InputError, match="level"):
        rep.add_heading("x", level=7)
    with pytest.raises(InputError, match="DataFrame"):
        rep.add_table([1, 2, 3])
