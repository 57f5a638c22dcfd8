"""Curated pure-Python packages in the Python guest, and per-session installs."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from sandbox import (
    ExecutionPolicy,
    RuntimeType,
    Sandbox,
    create_sandbox,
    install_package,
    list_available_packages,
)
from sandbox.runtimes.python.packages import PackageInstallError

USES = {
    "attrs": "import attrs\n@attrs.define\nclass P:\n    x: int\nprint(P(1))",
    "et-xmlfile": "import et_xmlfile\nprint(et_xmlfile.__name__)",
    "jinja2": "import jinja2\nprint(jinja2.Template('{{ a }}+{{ b }}').render(a=1, b=2))",
    "markdown": "import markdown\nprint(markdown.markdown('**b**'))",
    "markupsafe": "import markupsafe\nprint(markupsafe.escape('<x>'))",
    "openpyxl": (
        "import openpyxl\nwb = openpyxl.Workbook()\nwb.active['A1'] = 42\nwb.save('t.xlsx')\n"
        "print(openpyxl.load_workbook('t.xlsx').active['A1'].value)"
    ),
    "pypdf": "import pypdf\nw = pypdf.PdfWriter()\nw.add_blank_page(72, 72)\nw.write('t.pdf')\n"
    "print(len(pypdf.PdfReader('t.pdf').pages))",
    "python-dateutil": "from dateutil import parser\nprint(parser.parse('2024-02-29T10:00').month)",
    "pyyaml": "import yaml\nprint(yaml.safe_load('a: [1, 2]'))",
    "six": "import six\nprint(six.PY3)",
    "tabulate": "from tabulate import tabulate\nprint(tabulate([[1]], headers=['n'], tablefmt='plain'))",
    "PyPDF2": "import PyPDF2\nw = PyPDF2.PdfWriter()\nw.add_blank_page(72, 72)\nw.write('o.pdf')\n"
    "print(len(PyPDF2.PdfReader('o.pdf').pages))",
    "odfpy": "from odf.opendocument import OpenDocumentText\nfrom odf.text import P\n"
    "d = OpenDocumentText()\nd.text.addElement(P(text='hi'))\nd.save('t.odt')\n"
    "import zipfile\nprint('content.xml' in zipfile.ZipFile('t.odt').namelist())",
    "mammoth": "import mammoth\nprint(callable(mammoth.convert_to_html))",
    "certifi": "import certifi, os\nprint(os.path.getsize(certifi.where()) > 1000)",
    "idna": "import idna\nprint(idna.encode('b\u00fccher.example').decode())",
    "urllib3": "import urllib3\nprint(urllib3.util.parse_url('https://a.b/c?d=1').host)",
    "numpy": "import numpy as np\nprint(int(np.arange(10).reshape(2, 5).sum(axis=1)[1]))",
    "pandas": "import pandas as pd\nprint(pd.DataFrame({'a': [1, 2, 3]}).a.sum())",
    "scipy": "from scipy import stats\nprint(round(float(stats.norm.cdf(0)), 2))",
    "scikit-learn": "from sklearn.linear_model import LinearRegression\n"
    "print(round(float(LinearRegression().fit([[0], [1], [2]], [1, 3, 5]).coef_[0]), 3))",
    "xlsxwriter": "import xlsxwriter\nwb = xlsxwriter.Workbook('w.xlsx')\nwb.add_worksheet().write(0, 0, 1)\n"
    "wb.close()\nimport os\nprint(os.path.getsize('w.xlsx') > 0)",
}
EXPECTED = {
    "attrs": "P(x=1)",
    "et-xmlfile": "et_xmlfile",
    "jinja2": "1+2",
    "markdown": "<p><strong>b</strong></p>",
    "markupsafe": "&lt;x&gt;",
    "openpyxl": "42",
    "pypdf": "1",
    "python-dateutil": "2",
    "pyyaml": "{'a': [1, 2]}",
    "six": "True",
    "tabulate": "n\n  1",
    "xlsxwriter": "True",
    "PyPDF2": "1",
    "odfpy": "True",
    "mammoth": "True",
    "certifi": "True",
    "idna": "xn--bcher-kva.example",
    "urllib3": "a.b",
    "numpy": "35",
    "pandas": "6",
    "scipy": "0.5",
    "scikit-learn": "2.0",
}


def test_every_curated_package_is_listed_with_a_version() -> None:
    listed = list_available_packages(RuntimeType.PYTHON)
    assert set(USES) <= set(listed)
    assert {"numpy", "pandas", "scipy", "matplotlib", "scikit-learn"} <= set(listed)
    assert "zlib" not in listed  # C libraries of the manifest are not importable packages
    assert all(version[0].isdigit() for version in listed.values())
    assert "helpers" in list_available_packages("javascript")


@pytest.mark.parametrize("name", sorted(USES))
def test_curated_package_works_in_the_guest(python_sandbox: Sandbox, name: str) -> None:
    result = python_sandbox.execute(USES[name])
    assert result.success, result.stderr
    assert result.stdout.strip() == EXPECTED[name]


def _wheel(directory: Path, filename: str, module: str, source: str) -> Path:
    path = directory / filename
    name, version = filename.split("-")[:2]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{module}.py", source)
        archive.writestr(
            f"{name}-{version}.dist-info/METADATA", f"Name: {name}\nVersion: {version}\n"
        )
    return path


def test_install_pure_wheel_into_one_session_only(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "tinypkg-1.2.0-py3-none-any.whl", "tinypkg", "ANSWER = 42\n")
    with create_sandbox(RuntimeType.PYTHON) as first, create_sandbox(RuntimeType.PYTHON) as other:
        assert not first.execute("import tinypkg").success
        info = install_package(first.session_id, str(wheel))
        assert (info.name, info.version) == ("tinypkg", "1.2.0")
        assert first.execute("import tinypkg\nprint(tinypkg.ANSWER)").stdout == "42\n"
        assert "ModuleNotFoundError" in other.execute("import tinypkg").stderr


def test_native_wheel_is_refused_with_the_reason(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "fastthing-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "fastthing", "")
    with create_sandbox(RuntimeType.PYTHON) as sandbox:
        with pytest.raises(PackageInstallError, match="cannot load compiled extension"):
            install_package(sandbox.session_id, str(wheel))
        assert not (sandbox.workspace_path / ".sandbox-packages").exists()


def test_wheel_with_unsafe_paths_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("../../escape.py", "x = 1")
    with (
        create_sandbox(RuntimeType.PYTHON) as sandbox,
        pytest.raises(PackageInstallError, match="unsafe path"),
    ):
        install_package(sandbox.session_id, str(wheel))
    assert not (tmp_path / "escape.py").exists()


def test_missing_wheel_file_is_named(tmp_path: Path) -> None:
    with (
        create_sandbox(RuntimeType.PYTHON) as sandbox,
        pytest.raises(PackageInstallError, match="no wheel file at"),
    ):
        install_package(sandbox.session_id, str(tmp_path / "absent-1.0-py3-none-any.whl"))


def test_a_figure_left_open_comes_back_as_a_png(python_sandbox: Sandbox) -> None:
    result = python_sandbox.execute(
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('left open')\nplt.show()"
    )
    assert result.success, result.stderr
    figures = [f for f in result.metadata["files"] if f["path"].startswith("figures/")]
    assert len(figures) == 1 and figures[0]["path"].endswith(".png")
    png = (python_sandbox.workspace_path / figures[0]["path"]).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    # Closed once saved: the next cell does not save it again.
    again = python_sandbox.execute("print(len(plt.get_fignums()))")
    assert again.stdout == "0\n" and again.metadata["files"] == []


def test_fresh_interpreters_are_unpredictable_to_each_other() -> None:
    draws = set()
    for _ in range(3):
        with create_sandbox(RuntimeType.PYTHON) as sandbox:
            result = sandbox.execute(
                "import random, os\nprint(random.random(), os.urandom(8).hex())"
            )
            draws.add(result.stdout)
    values = [line.split() for line in draws]
    assert len({value for value, _ in values}) == 3
    assert len({entropy for _, entropy in values}) == 3


@pytest.mark.parametrize("env", [{}, {"OWN": "environment"}], ids=["default", "own-env"])
def test_numpy_random_is_reseeded_per_interpreter(env: dict[str, str]) -> None:
    """With its own environment a first turn takes the reactor's set-up path, not the
    snapshot's shortcut; the host's seeding must hold on both."""
    seen = set()
    for _ in range(2):
        with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(env=env)) as sandbox:
            seen.add(sandbox.execute("import numpy as np\nprint(np.random.random())").stdout)
    assert len(seen) == 2
