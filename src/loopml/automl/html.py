"""Pieces of self-contained HTML pages: a style, tables and matplotlib plots as inline
SVG. No scripts and no CDN, so a page opens offline, prints, and can be mailed as one
file. The AutoML report and the monitoring report are both made of them.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable, Sequence
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;text-align:left;
border-bottom:1px solid #eee;font-size:.9rem}th{background:#f6f6f6}
.grid{display:flex;flex-wrap:wrap;gap:1rem}.plot{width:340px}.plot svg{width:100%;height:auto}
.plot.wide{width:680px}
.bad{color:#b00020;font-weight:600}.good{color:#1b5e20;font-weight:600}.note{color:#666}
"""


def escape(value: Any) -> str:
    return html.escape(str(value))


def number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    if isinstance(value, int | float):
        return f"{value:.{digits}g}" if abs(value) >= 1e4 else f"{value:.{digits}f}"
    return escape(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def svg_plot(
    draw: Callable[[Any], None], title: str, size: tuple[float, float] | None = None
) -> str:
    """A matplotlib drawing as inline SVG; ``size`` (inches) makes a wide one."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9}):
        fig, ax = plt.subplots(figsize=size or (4.2, 3.4))
        try:
            draw(ax)
            ax.set_title(title)
            fig.tight_layout()
            buffer = io.StringIO()
            # No metadata: the page stays byte-stable and names no outside resource.
            fig.savefig(buffer, format="svg", metadata={"Creator": None, "Date": None,
                                                         "Type": None})  # fmt: skip
        finally:
            plt.close(fig)
    svg = buffer.getvalue()
    kind = "plot wide" if size is not None else "plot"
    return f'<div class="{kind}">{svg[svg.index("<svg") :]}</div>'
