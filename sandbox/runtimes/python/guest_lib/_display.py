"""How a cell's last value is shown: the guest side of the REPL echo (not a public helper).

A model reads a cell's output as text, often many cells a turn, so a value must show what
matters in a bounded number of lines: a DataFrame of a million rows prints its head and tail,
its shape and its dtypes, never a million lines, even when the cell has set pandas or numpy
display options to "unbounded". A matplotlib figure (or an Axes, or the list of lines
``plt.plot`` returns) is not printed at all: the figure comes back as a PNG file, as every
figure a cell leaves open does. Everything else keeps its ``repr()``, as in the REPL.

The driver imports this module into the snapshot, so it must import nothing heavy itself:
pandas, numpy and matplotlib are looked up in ``sys.modules`` and used only if the cell's
value can only have come from them.
"""

from __future__ import annotations

import os
import sys
from typing import Any

FIGURES_DIR = "figures"
# Caps on the display options a cell may have widened (None and 0 mean "no limit" to pandas).
_MAX_ROWS = 60
_MIN_ROWS = 10
_MAX_COLUMNS = 20
_MAX_WIDTH = 160
_MAX_COLWIDTH = 80
_ARRAY_THRESHOLD = 1000
_ARRAY_EDGEITEMS = 5
_DTYPES_LISTED = 20
# The markdown table sent to the host for MCP clients: small, since it repeats stdout.
_MD_ROWS = 10
_MD_COLUMNS = 8
_MD_CELL = 30
MARKDOWN_LIMIT = 4000

_figure_count = 0


def show(value: object) -> str | None:
    """Print ``value`` as the echo of a cell's last expression (not None).

    Returns a markdown table of a DataFrame or Series for the host to attach to the result,
    or None.
    """
    try:
        return _show(value)
    except Exception:  # a value whose rich display fails still echoes as in the REPL
        print(repr(value))
        return None


def _show(value: object) -> str | None:
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        print(_frame_text(pandas, value))
        return _markdown(value, value.columns, lambda row, column: value.iat[row, column])
    if pandas is not None and isinstance(value, pandas.Series):
        print(_series_text(pandas, value))
        name = "value" if value.name is None else value.name
        return _markdown(value, [name], lambda row, column: value.iat[row])
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray) and _artists(value) is None:
        print(_array_text(numpy, value))
        return None
    artists = _artists(value)
    if artists is not None:
        _save_closed_figures(artists)
        return None
    print(repr(value))
    return None


def _bounded(option: object, cap: int) -> int:
    """A display option, unless it is unbounded (None, 0, negative) or wider than ``cap``."""
    return min(option, cap) if isinstance(option, int) and option > 0 else cap


def _pandas_bounds(pandas: Any) -> dict[str, int]:
    get = pandas.get_option
    rows = _bounded(get("display.max_rows"), _MAX_ROWS)
    return {
        "max_rows": rows,
        "min_rows": min(_bounded(get("display.min_rows"), _MIN_ROWS), rows),
        "max_cols": _bounded(get("display.max_columns"), _MAX_COLUMNS),
        "line_width": _bounded(get("display.width"), _MAX_WIDTH),
        "max_colwidth": _bounded(get("display.max_colwidth"), _MAX_COLWIDTH),
    }


def _frame_text(pandas: Any, frame: Any) -> str:
    """The frame's head and tail as pandas draws them, then its shape and dtypes."""
    bounds = _pandas_bounds(pandas)
    table = frame.to_string(show_dimensions=False, **bounds)
    rows, columns = frame.shape
    dtypes = [f"{name} {dtype}" for name, dtype in list(frame.dtypes.items())[:_DTYPES_LISTED]]
    if columns > _DTYPES_LISTED:
        dtypes.append(f"... ({columns - _DTYPES_LISTED} more)")
    footer = f"[{rows} rows x {columns} columns]"
    return f"{table}\n{footer} dtypes: {', '.join(dtypes)}" if columns else f"{table}\n{footer}"


def _series_text(pandas: Any, series: Any) -> str:
    bounds = _pandas_bounds(pandas)
    return str(
        series.to_string(
            max_rows=bounds["max_rows"],
            min_rows=bounds["min_rows"],
            length=len(series) > bounds["max_rows"],
            dtype=True,
            name=True,
        )
    )


def _array_text(numpy: Any, array: Any) -> str:
    """The array's repr with its edges only once it is large, then its shape and dtype."""
    options = numpy.get_printoptions()
    threshold = _bounded(options["threshold"], _ARRAY_THRESHOLD)
    with numpy.printoptions(
        threshold=threshold,
        edgeitems=_bounded(options["edgeitems"], _ARRAY_EDGEITEMS),
        linewidth=_bounded(options["linewidth"], _MAX_WIDTH),
    ):
        text = repr(array)
    if array.size > threshold:
        text += f"\n[shape {array.shape}, dtype {array.dtype}]"
    return text


def _cell(value: object) -> str:
    """One markdown cell: floats to 6 significant digits, one line, pipes escaped, clipped."""
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= _MD_CELL else text[: _MD_CELL - 1] + "…"


def _markdown(data: Any, columns: Any, at: Any) -> str:
    """A GitHub-flavoured markdown table of the first and last rows and first columns."""
    rows = len(data)
    shown_columns = list(range(min(len(columns), _MD_COLUMNS)))
    if rows > _MD_ROWS:
        half = _MD_ROWS // 2
        positions: list[int | None] = [*range(half), None, *range(rows - half, rows)]
    else:
        positions = list(range(rows))
    header = ["", *(_cell(columns[column]) for column in shown_columns)]
    if len(columns) > _MD_COLUMNS:
        header.append("…")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in positions:
        if row is None:
            cells = ["…"] * len(header)
        else:
            cells = [_cell(data.index[row]), *(_cell(at(row, column)) for column in shown_columns)]
            if len(columns) > _MD_COLUMNS:
                cells.append("…")
        lines.append("| " + " | ".join(cells) + " |")
    shape = f"{rows} rows x {len(columns)} columns" if data.ndim == 2 else f"{rows} rows"
    lines.append(f"\n_{shape}_")
    text = "\n".join(lines)
    return text if len(text) <= MARKDOWN_LIMIT else text[: MARKDOWN_LIMIT - 1] + "…"


def _artists(value: object) -> list[Any] | None:
    """The matplotlib artists ``value`` is made of (a Figure, Axes, lines, or a list, tuple or
    object array of them), or None if it holds anything else or matplotlib is not loaded."""
    artist_module = sys.modules.get("matplotlib.artist")
    if artist_module is None:
        return None
    if isinstance(value, artist_module.Artist):
        return [value]
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        if value.dtype != object:
            return None
        items: Any = value.flat
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return None
    found: list[Any] = []
    for item in items:
        inner = _artists(item)
        if inner is None:
            return None
        found.extend(inner)
    return found or None


def _save_closed_figures(artists: list[Any]) -> None:
    """Save the figures of ``artists`` that pyplot will not: those it does not hold open."""
    from matplotlib._pylab_helpers import Gcf
    from matplotlib.figure import Figure

    open_figures = {id(manager.canvas.figure) for manager in Gcf.get_all_fig_managers()}
    saved: set[int] = set()
    for artist in artists:
        figure = artist
        for _ in range(8):  # an artist's figure may be a subfigure of the root figure
            if isinstance(figure, Figure) or figure is None:
                break
            figure = getattr(figure, "figure", None)
        if figure is None or id(figure) in open_figures or id(figure) in saved:
            continue
        saved.add(id(figure))
        save_figure(figure, "closed")


def save_figure(figure: Any, label: object) -> None:
    """Save ``figure`` as the next figures/figure_N.png; on failure say so on stderr."""
    global _figure_count
    _figure_count += 1
    try:
        os.makedirs(FIGURES_DIR, exist_ok=True)
        figure.savefig(f"{FIGURES_DIR}/figure_{_figure_count}.png", format="png")
    except Exception as error:  # e.g. no room left: say so, keep the session
        print(f"[figure {label} not saved: {error}]", file=sys.stderr)


def save_open_figures() -> None:
    """Figures a cell left open (or showed: Agg cannot) become PNG files in the workspace.

    A model rarely remembers savefig, and there is no display to show a figure on.
    """
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return
    for number in pyplot.get_fignums():
        figure = pyplot.figure(number)
        save_figure(figure, number)
        pyplot.close(figure)
