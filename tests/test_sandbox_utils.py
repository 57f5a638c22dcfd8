"""The shell-style helpers (sandbox_utils / sandboxUtils) inside real Python and JS guests.

Both guests run the same calls against the same workspace and must give the same answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sandbox
from sandbox import RuntimeType, Sandbox, create_sandbox

JS_UTILS = Path(sandbox.__file__).parent / "runtimes" / "javascript" / "guest_utils.js"
PYTHON_NAMES = [
    "cat",
    "chunk",
    "copy_tree",
    "cp",
    "csv_to_json",
    "diff",
    "echo",
    "file_info",
    "filter_by",
    "find",
    "grep",
    "group_by",
    "head",
    "json_to_csv",
    "ls",
    "map_items",
    "mkdir",
    "mv",
    "read_json",
    "remove_tree",
    "rm",
    "sed",
    "sort_by",
    "tail",
    "touch",
    "tree",
    "unique",
    "walk",
    "wc",
    "write_json",
    "xml_to_dict",
]
JS_NAMES = "find tree grep head tail wc csvToJson jsonToCsv fileInfo"
PEOPLE_CSV = '\ufeffid,name,note\r\n007,Ann,"hi, there"\r\n\r\n8,Bob\r\n9,Cy,"two\nlines"\r\n'
PEOPLE = [
    {"id": "007", "name": "Ann", "note": "hi, there"},
    {"id": "8", "name": "Bob", "note": ""},
    {"id": "9", "name": "Cy", "note": "two\nlines"},
]


class Utils:
    """Calls the helpers in one guest and brings each value back through JSON."""

    def __init__(self, sandbox: Sandbox, runtime: RuntimeType) -> None:
        self.sandbox = sandbox
        self.runtime = runtime
        if runtime is RuntimeType.PYTHON:
            self.run("import json, os, sandbox_utils")
        else:
            assert self.run("console.log(typeof sandboxUtils)") == "object\n"

    @property
    def workspace(self) -> Path:
        return self.sandbox.workspace_path

    def run(self, code: str) -> str:
        result = self.sandbox.execute(code)
        assert result.success, result.stderr
        return result.stdout

    def call(self, python: str, javascript: str | None = None) -> Any:
        """python: a call on sandbox_utils; javascript: the same on sandboxUtils if it differs."""
        if self.runtime is RuntimeType.PYTHON:
            return json.loads(self.run(f"print(json.dumps(sandbox_utils.{python}))"))
        expression = javascript or python
        return json.loads(self.run(f"console.log(JSON.stringify(sandboxUtils.{expression}))"))

    def error(self, python: str, javascript: str | None = None) -> str:
        if self.runtime is RuntimeType.PYTHON:
            code = f"sandbox_utils.{python}"
        else:
            code = f"sandboxUtils.{javascript or python}"
        result = self.sandbox.execute(code)
        assert not result.success, result.stdout
        return result.stderr

    def grep(self, python: str, javascript: str | None = None) -> list[list[object]]:
        found = self.call(python, javascript)
        if self.runtime is RuntimeType.JAVASCRIPT:
            return [[match["path"], match["lineNumber"], match["line"]] for match in found]
        return [list(match) for match in found]


def _open(runtime: RuntimeType) -> Iterator[Utils]:
    with create_sandbox(runtime) as box:
        yield Utils(box, runtime)


@pytest.fixture(
    scope="module", params=[RuntimeType.PYTHON, RuntimeType.JAVASCRIPT], ids=["python", "js"]
)
def utils(request: pytest.FixtureRequest) -> Iterator[Utils]:
    """One guest per language over a fixed workspace; tests here only read it."""
    for opened in _open(request.param):
        root = opened.workspace
        (root / "notes.txt").write_text("alpha beta\ngamma\n\ndelta TODO\nlast")
        (root / "src" / "lib" / "deep" / "more").mkdir(parents=True)
        (root / "src" / "app.py").write_bytes(b"# TODO: fix\nprint('hi')\r\n")
        (root / "src" / "lib" / "util.py").write_text("def f():\n    return 'todo later'\n")
        (root / "src" / "lib" / "deep" / "more" / "x.txt").write_text("nothing here\n")
        os.symlink("..", root / "src" / "lib" / "loop")  # back to src: walks must not loop
        (root / "data").mkdir()
        (root / "data" / "people.csv").write_text(PEOPLE_CSV, newline="")
        (root / ".hidden").mkdir()
        (root / ".hidden" / "secret.txt").write_text("TODO hidden\n")
        (root / "blob.bin").write_bytes(b"TODO\0\xff\n")
        (root / "utf8.txt").write_bytes("héllo wörld\n\u00a0x".encode() + b"\xff\n")
        os.utime(root / "notes.txt", (1_700_000_000, 1_700_000_000))
        yield opened


@pytest.fixture(params=[RuntimeType.PYTHON, RuntimeType.JAVASCRIPT], ids=["python", "js"])
def fresh(request: pytest.FixtureRequest) -> Iterator[Utils]:
    """A guest of its own, for tests that write files."""
    yield from _open(request.param)


def test_find_globs_like_a_shell(utils: Utils) -> None:
    assert utils.call("find()") == ["blob.bin", "data", "notes.txt", "src", "utf8.txt"]
    assert utils.call("find('**/*.py')") == ["src/app.py", "src/lib/util.py"]
    assert utils.call("find('*.py', 'src')") == ["src/app.py"]
    assert utils.call("find('src/*/util.py')") == ["src/lib/util.py"]
    assert utils.call("find('?otes.[st]xt')") == ["notes.txt"]
    assert utils.call("find('[!bdu]*')") == ["notes.txt", "src"]
    assert utils.call("find('**', 'src')") == [
        "src/app.py",
        "src/lib",
        "src/lib/deep",
        "src/lib/deep/more",
        "src/lib/deep/more/x.txt",
        "src/lib/loop",  # listed, but not walked: it leads back to src
        "src/lib/util.py",
    ]


def test_find_shows_hidden_names_only_when_asked(utils: Utils) -> None:
    assert utils.call("find('**/*.txt')") == ["notes.txt", "src/lib/deep/more/x.txt", "utf8.txt"]
    assert utils.call("find('.*')") == [".hidden"]
    assert utils.call("find('*', '.hidden')") == [".hidden/secret.txt"]


def test_relative_paths_follow_the_current_directory(utils: Utils) -> None:
    code = {
        RuntimeType.PYTHON: (
            "os.chdir('src')\n"
            "try:\n"
            "    print(json.dumps(sandbox_utils.find('*.py')))\n"
            "finally:\n"
            "    os.chdir('..')"
        ),
        RuntimeType.JAVASCRIPT: (
            "os.chdir('src');\n"
            "try { console.log(JSON.stringify(sandboxUtils.find('*.py'))) }\n"
            "finally { os.chdir('..') }"
        ),
    }
    assert json.loads(utils.run(code[utils.runtime])) == ["app.py"]


def test_tree_draws_the_layout(utils: Utils) -> None:
    assert utils.call("tree('src', 2)") == (
        "src/\n"
        "├── app.py\n"
        "└── lib/\n"
        "    ├── deep/ (1 entry)\n"
        "    ├── loop/ (link back to an enclosing directory)\n"
        "    └── util.py"
    )
    assert utils.call("tree()") == (
        "./\n"
        "├── blob.bin\n"
        "├── data/\n"
        "│   └── people.csv\n"
        "├── notes.txt\n"
        "├── src/\n"
        "│   ├── app.py\n"
        "│   └── lib/\n"
        "│       ├── deep/ (1 entry)\n"
        "│       ├── loop/ (link back to an enclosing directory)\n"
        "│       └── util.py\n"
        "└── utf8.txt"
    )


def test_grep_reports_path_line_number_and_line(utils: Utils) -> None:
    assert utils.grep("grep('TODO')") == [
        ["notes.txt", 4, "delta TODO"],
        ["src/app.py", 1, "# TODO: fix"],
    ]
    # hidden files, the binary file and the symlink loop stay out of a case-insensitive search
    assert utils.grep("grep('todo', ignore_case=True)", "grep('todo', '.', '*', true)") == [
        ["notes.txt", 4, "delta TODO"],
        ["src/app.py", 1, "# TODO: fix"],
        ["src/lib/util.py", 2, "    return 'todo later'"],
    ]


def test_grep_glob_single_file_and_cap(utils: Utils) -> None:
    assert utils.grep("grep('print', 'src', '*.py')") == [["src/app.py", 2, "print('hi')"]]
    assert utils.grep("grep('^$', 'notes.txt')") == [["notes.txt", 3, ""]]  # no phantom line
    capped = utils.grep("grep('.', max_matches=2)", "grep('.', '.', '*', false, 2)")
    assert capped == [
        ["data/people.csv", 1, "\ufeffid,name,note"],
        ["data/people.csv", 2, '007,Ann,"hi, there"'],
    ]


def test_head_tail_keep_line_endings(utils: Utils) -> None:
    assert utils.call("head('notes.txt', 2)") == "alpha beta\ngamma\n"
    assert utils.call("head('notes.txt')") == "alpha beta\ngamma\n\ndelta TODO\nlast"
    assert utils.call("tail('notes.txt', 2)") == "delta TODO\nlast"
    assert utils.call("tail('src/app.py', 1)") == "print('hi')\r\n"
    assert utils.call("head('notes.txt', 0)") == ""
    assert utils.call("tail('notes.txt', 0)") == ""


def test_wc_counts_like_wc(utils: Utils) -> None:
    assert utils.call("wc('notes.txt')") == {"lines": 4, "words": 6, "bytes": 33}
    # bytes, not characters; a no-break space and a stray byte do not split words
    assert utils.call("wc('utf8.txt')") == {"lines": 2, "words": 3, "bytes": 19}
    assert utils.call("wc('blob.bin')") == {"lines": 1, "words": 1, "bytes": 7}


def test_file_info(utils: Utils) -> None:
    is_dir = "is_dir" if utils.runtime is RuntimeType.PYTHON else "isDir"
    info = utils.call("file_info('notes.txt')", "fileInfo('notes.txt')")
    assert info == {"size": 33, "modified": "2023-11-14T22:13:20Z", is_dir: False}
    assert utils.call("file_info('src')", "fileInfo('src')")[is_dir] is True


def test_csv_to_json_reads_quotes_bom_crlf_and_short_rows(fresh: Utils) -> None:
    (fresh.workspace / "people.csv").write_text(PEOPLE_CSV, newline="")
    rows = fresh.call(
        "csv_to_json('people.csv', 'people.json')", "csvToJson('people.csv', 'people.json')"
    )
    assert rows == PEOPLE
    assert json.loads((fresh.workspace / "people.json").read_text()) == PEOPLE
    assert fresh.call("csv_to_json('people.csv')", "csvToJson('people.csv')") == PEOPLE


def test_json_to_csv_unions_keys_and_round_trips(fresh: Utils) -> None:
    records = [{"a": 1, "b": "x,y"}, {"b": None, "c": True}, {"a": [1, 2], "c": {"k": "v"}}]
    (fresh.workspace / "records.json").write_text(json.dumps(records))
    written = fresh.call(
        "json_to_csv('records.json', 'out.csv')", "jsonToCsv('records.json', 'out.csv')"
    )
    assert written == 3
    expected = 'a,b,c\n1,"x,y",\n,,true\n"[1,2]",,"{""k"":""v""}"\n'
    assert (fresh.workspace / "out.csv").read_text() == expected
    assert fresh.call("csv_to_json('out.csv')", "csvToJson('out.csv')") == [
        {"a": "1", "b": "x,y", "c": ""},
        {"a": "", "b": "", "c": "true"},
        {"a": "[1,2]", "b": "", "c": '{"k":"v"}'},
    ]


def test_csv_json_csv_round_trip(fresh: Utils) -> None:
    (fresh.workspace / "people.csv").write_text(PEOPLE_CSV, newline="")
    assert fresh.call("csv_to_json('people.csv', 'p.json')", "csvToJson('people.csv', 'p.json')")
    assert fresh.call("json_to_csv('p.json', 'p.csv')", "jsonToCsv('p.json', 'p.csv')") == 3
    assert fresh.call("csv_to_json('p.csv')", "csvToJson('p.csv')") == PEOPLE


def test_json_to_csv_of_an_empty_list_writes_an_empty_file(fresh: Utils) -> None:
    (fresh.workspace / "empty.json").write_text("[]")
    assert fresh.call("json_to_csv('empty.json', 'e.csv')", "jsonToCsv('empty.json', 'e.csv')") == 0
    assert (fresh.workspace / "e.csv").read_text() == ""


@pytest.mark.parametrize(
    ("python", "javascript", "message"),
    [
        ("head('missing.txt')", None, "No such file or directory"),
        ("find('*', 'missing')", None, "No such file or directory"),
        ("tree('notes.txt')", None, "Not a directory"),
        ("wc('src')", None, "Is a directory"),
        ("file_info('missing.txt')", "fileInfo('missing.txt')", "No such file or directory"),
    ],
)
def test_errors_name_the_path(
    utils: Utils, python: str, javascript: str | None, message: str
) -> None:
    stderr = utils.error(python, javascript)
    assert message in stderr
    path = python.split("'")[-2]
    assert f"'{path}'" in stderr if utils.runtime is RuntimeType.PYTHON else f'"{path}"' in stderr


def test_errors_follow_each_language(utils: Utils) -> None:
    if utils.runtime is RuntimeType.PYTHON:
        assert (
            "FileNotFoundError: [Errno 44] No such file or directory: 'missing.txt'"
            in utils.error("head('missing.txt')")
        )
        assert "NotADirectoryError" in utils.error("find('*', 'notes.txt')")
    else:
        assert 'Error: head("missing.txt"): No such file or directory' in utils.error(
            "head('missing.txt')"
        )
        assert 'Error: find("notes.txt"): Not a directory' in utils.error("find('*', 'notes.txt')")


@pytest.mark.parametrize(
    ("python", "javascript", "message"),
    [
        ("grep('(')", None, "invalid regular expression"),
        ("find('/etc/*')", None, "the pattern must be a relative glob"),
        ("head('notes.txt', -1)", None, "n must be 0 or more, got -1"),
        ("tree('.', 0)", None, "must be at least 1, got 0"),
    ],
)
def test_bad_arguments_are_explained(
    utils: Utils, python: str, javascript: str | None, message: str
) -> None:
    assert message in utils.error(python, javascript)


def test_bad_data_files_are_explained(fresh: Utils) -> None:
    (fresh.workspace / "object.json").write_text('{"a": 1}')
    (fresh.workspace / "mixed.json").write_text('[{"a": 1}, 2]')
    (fresh.workspace / "broken.json").write_text("[{")
    (fresh.workspace / "wide.csv").write_text("a,b\n1,2,3\n")
    cases = {
        "json_to_csv('object.json', 'o.csv')": "expected a JSON array of objects",
        "json_to_csv('mixed.json', 'o.csv')": "item 1 is not an object",
        "json_to_csv('broken.json', 'o.csv')": "not valid JSON",
        "csv_to_json('wide.csv')": "data row 1 has 3 fields but the header has 2",
    }
    for python, message in cases.items():
        javascript = python.replace("json_to_csv", "jsonToCsv").replace("csv_to_json", "csvToJson")
        stderr = fresh.error(python, javascript)
        assert message in stderr
        assert python.split("'")[1] in stderr  # the file is named


def test_helpers_document_themselves(utils: Utils) -> None:
    if utils.runtime is RuntimeType.PYTHON:
        assert utils.call("__all__") == PYTHON_NAMES
        # what help() shows; the guest runs with -S, so the help builtin itself is absent
        text = utils.run("import pydoc\nprint(pydoc.plain(pydoc.render_doc(sandbox_utils)))")
        assert "Shell-style chores" in text
        for name in PYTHON_NAMES:
            assert f"{name}(" in text
    else:
        keys = utils.run("console.log(Object.keys(sandboxUtils).join(' '))")
        assert keys == JS_NAMES + "\n"
        # nothing but sandboxUtils leaks into the global scope
        assert utils.run("console.log(typeof find, typeof grep)") == "undefined undefined\n"
