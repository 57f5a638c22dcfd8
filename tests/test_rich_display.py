"""A Python cell's last value shown usefully to a model: bounded tables for DataFrames, Series
and arrays, figures as PNG files, and a markdown table in the MCP result."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from test_mcp_support import connect_stdio, stdio_server, text_of

from sandbox import ExecutionPolicy, RuntimeType, Sandbox, create_sandbox

_FRAME = (
    "import numpy as np, pandas as pd\n"
    "frame = pd.DataFrame({'id': np.arange(1_000_000), 'score': np.linspace(0, 1, 1_000_000),"
    " 'tag': ['a|b'] * 1_000_000})\n"
)


@pytest.fixture(scope="module")
def py() -> Iterator[Sandbox]:
    policy = ExecutionPolicy(timeout_seconds=60, memory_bytes=512 * 1024 * 1024)
    with create_sandbox(RuntimeType.PYTHON, policy=policy) as sandbox:
        result = sandbox.execute(_FRAME + "import matplotlib\nmatplotlib.use('Agg')")
        assert result.success, result.stderr
        yield sandbox


def run(sandbox: Sandbox, code: str) -> tuple[str, dict[str, object]]:
    result = sandbox.execute(code)
    assert result.success, result.stderr
    return result.stdout, result.metadata


def test_a_million_row_frame_prints_head_tail_shape_and_dtypes(py: Sandbox) -> None:
    out, metadata = run(py, "frame")
    lines = out.splitlines()
    assert len(lines) < 40
    assert lines[0].split() == ["id", "score", "tag"]
    assert lines[1].split()[:2] == ["0", "0"] and lines[-2].split()[:2] == ["999999", "999999"]
    assert lines[-1].startswith("[1000000 rows x 3 columns] dtypes: id int")
    assert "score float64" in lines[-1]
    table = metadata["display_markdown"]
    assert isinstance(table, str)
    rows = table.splitlines()
    assert rows[0] == "|  | id | score | tag |" and rows[1] == "|---|---|---|---|"
    assert "| 0 | 0 | 0 | a\\|b |" in rows  # pipes in cells are escaped
    assert rows[-1] == "_1000000 rows x 3 columns_" and len(rows) == 2 + 11 + 2


def test_widened_display_options_are_still_bounded(py: Sandbox) -> None:
    widen = (
        "pd.set_option('display.max_rows', None)\n"
        "pd.set_option('display.max_columns', None)\n"
        "np.set_printoptions(threshold=10**9)\n"
    )
    out, _ = run(py, widen + "frame")
    assert len(out.splitlines()) < 70
    array_out, metadata = run(py, "np.arange(1_000_000).reshape(1000, 1000)")
    assert len(array_out.splitlines()) < 15 and "..." in array_out
    assert re.search(r"\n\[shape \(1000, 1000\), dtype int(32|64)\]\n$", array_out)
    assert "display_markdown" not in metadata  # arrays have no markdown table
    run(py, "pd.reset_option('display.max_rows'); pd.reset_option('display.max_columns')")


def test_a_series_prints_its_length_and_dtype(py: Sandbox) -> None:
    out, metadata = run(py, "frame.score")
    assert len(out.splitlines()) < 30
    assert out.rstrip().endswith("Name: score, Length: 1000000, dtype: float64")
    table = metadata["display_markdown"]
    assert isinstance(table, str) and table.startswith("|  | score |\n")


def test_small_values_keep_their_repr(py: Sandbox) -> None:
    assert run(py, "np.arange(3)")[0] == "array([0, 1, 2])\n"
    assert run(py, "{'a': [1, 2]}")[0] == "{'a': [1, 2]}\n"
    out, metadata = run(py, "pd.DataFrame({'x': [1, 2]})")
    assert out == "   x\n0  1\n1  2\n[2 rows x 1 columns] dtypes: x int64\n"
    assert (
        metadata["display_markdown"]
        == "|  | x |\n|---|---|\n| 0 | 1 |\n| 1 | 2 |\n\n_2 rows x 1 columns_"
    )
    assert "display_markdown" not in run(py, "1 + 1")[1]


def _figures(metadata: dict[str, object]) -> list[str]:
    files = metadata["files"]
    assert isinstance(files, list)
    return [entry["path"] for entry in files if entry["path"].startswith("figures/")]


@pytest.mark.parametrize(
    "cell",
    [
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])",  # a list of Line2D
        "fig, ax = plt.subplots()\nax.bar([1, 2], [3, 4])\nax",  # an Axes
        "fig, axes = plt.subplots(1, 2)\nfig, axes",  # a figure and an array of Axes
        "fig = plt.figure()\nfig.gca().plot([1])\nplt.close(fig)\nfig",  # closed: pyplot forgot it
        "from matplotlib.figure import Figure\nfig = Figure()\nfig.add_subplot().plot([1])\nfig",
    ],
)
def test_a_figure_comes_back_as_one_png_and_prints_nothing(py: Sandbox, cell: str) -> None:
    out, metadata = run(py, cell)
    assert out == ""
    figures = _figures(metadata)
    assert len(figures) == 1 and figures[0].endswith(".png")
    assert (Path(py.workspace_path) / figures[0]).read_bytes().startswith(b"\x89PNG")


def test_a_failing_rich_display_falls_back_to_repr(py: Sandbox) -> None:
    cell = (
        "class Odd(pd.DataFrame):\n"
        "    def to_string(self, *args, **kwargs):\n"
        "        raise RuntimeError('no table')\n"
        "    def __repr__(self):\n"
        "        return 'Odd frame'\n"
        "Odd({'a': [1]})"
    )
    assert run(py, cell)[0] == "Odd frame\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_mcp_result_carries_the_markdown_table(tmp_path: Path) -> None:
    async with connect_stdio(stdio_server(tmp_path)) as session:
        with anyio.fail_after(120):
            code = "import pandas as pd\npd.DataFrame({'city': ['Oslo', 'Lima'], 'temp': [3.5, 19.25]})"
            result = await session.call_tool("execute_code", {"code": code})
            plain = await session.call_tool("execute_code", {"code": "41 + 1"})
    assert not result.is_error, text_of(result)
    output = result.structured_content
    assert output is not None
    assert output["table_markdown"] == (
        "|  | city | temp |\n|---|---|---|\n| 0 | Oslo | 3.5 |\n| 1 | Lima | 19.25 |\n\n"
        "_2 rows x 2 columns_"
    )
    assert "Oslo" in output["stdout"] and "dtypes: city" in output["stdout"]
    assert (
        plain.structured_content is not None and plain.structured_content["table_markdown"] is None
    )
