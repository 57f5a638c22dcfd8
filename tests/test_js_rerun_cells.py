"""JavaScript cells can run again, as in the Node REPL: top-level let/const/class declared again
replace the earlier binding, and a cell's completion value is echoed as Node shows it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox import RuntimeType, Sandbox, create_sandbox


@pytest.fixture(scope="module")
def js() -> Iterator[Sandbox]:
    """One session for the whole module: re-running cells in one interpreter is the point."""
    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        yield sandbox


def run(sandbox: Sandbox, code: str) -> str:
    result = sandbox.execute(code)
    assert result.success, result.stderr
    return result.stdout


def test_the_same_cell_runs_twice(js: Sandbox) -> None:
    cell = "let total = 0\nconst items = [1, 2, 3]\nclass Counter { constructor() { this.n = 1 } }"
    run(js, cell)
    run(js, cell)
    assert run(js, "total += items.length; [total, new Counter().n]") == "[ 3, 1 ]\n"


def test_a_later_cell_replaces_a_binding_and_sees_earlier_ones(js: Sandbox) -> None:
    run(js, "let seen = 'first'; const unit = 'kg'")
    assert run(js, "let seen = `${unit} second`\nseen") == "'kg second'\n"
    assert run(js, "seen") == "'kg second'\n"


def test_several_declarators_and_patterns(js: Sandbox) -> None:
    run(js, "const obj = {x: 1, y: {z: 2}, w: 3, v: 4}")
    cell = (
        "let a = 1, b = a + 1, c\n"
        "const {x, y: {z}, q = 7, ...rest} = obj;\n"
        "let [p, , r = 5, ...others] = [10, 11, undefined, 12, 13]"
    )
    run(js, cell)
    run(js, cell)
    out = run(js, "[a, b, c, x, z, q, rest, p, r, others]")
    assert out == "[ 1, 2, undefined, 1, 2, 7, { w: 3, v: 4 }, 10, 5, [ 12, 13 ] ]\n"


def test_a_class_declared_again_is_the_new_class(js: Sandbox) -> None:
    run(js, "class Shape { area() { return 1 } }")
    run(js, "class Shape { area() { return 2 } }\nclass Square extends Shape {}")
    assert run(js, "[new Shape().area(), new Square().area(), new Square()]") == (
        "[ 2, 2, Square {} ]\n"
    )


def test_const_stays_read_only_until_declared_again(js: Sandbox) -> None:
    same_cell = js.execute("const limit = 1; limit = 2")
    assert not same_cell.success and "'limit' is read-only" in same_cell.stderr
    later_cell = js.execute("limit++")
    assert not later_cell.success and "'limit' is read-only" in later_cell.stderr
    assert run(js, "const limit = 5; limit") == "5\n"
    assert run(js, "let limit = 6; limit += 1; limit") == "7\n"  # now a plain variable


def test_declarations_inside_blocks_functions_and_text_are_left_alone(js: Sandbox) -> None:
    cell = (
        "/* let hidden = 1 */ // const hidden2 = 2\n"
        "const words = ['let', \"const\", `class ${'let'} x`, /let y = 1/.source]\n"
        "{ let inBlock = 1 }\n"
        "function f() { let local = 2; const k = 3; return local + k }\n"
        "for (let i = 0; i < 2; i++) { const j = i }\n"
        "[typeof hidden, typeof hidden2, typeof inBlock, typeof local, typeof i, f(), words]"
    )
    expected = (
        "[\n  'undefined',\n  'undefined',\n  'undefined',\n  'undefined',\n  'undefined',\n"
        "  5,\n  [ 'let', 'const', 'class let x', 'let y = 1' ]\n]\n"
    )
    assert run(js, cell) == expected
    assert run(js, cell) == expected
    # A block's own let still cannot be declared twice: that stays a real error.
    twice = js.execute("{ let dup = 1; let dup = 2 }")
    assert not twice.success and "invalid redefinition" in twice.stderr


def test_top_level_await_in_a_declaration(js: Sandbox) -> None:
    cell = "const answer = await new Promise((resolve) => setTimeout(() => resolve(42), 1))\nanswer"
    assert run(js, cell) == "42\n"
    assert run(js, cell) == "42\n"


def test_strict_mode_cells_can_declare_again(js: Sandbox) -> None:
    cell = "'use strict'\nlet strictValue = 1\nconst strictConst = [strictValue]\nstrictConst"
    assert run(js, cell) == "[ 1 ]\n"
    assert run(js, cell) == "[ 1 ]\n"


def test_error_lines_stay_right_after_the_rewrite(js: Sandbox) -> None:
    cell = (
        "let one = 1,\n  two = 2\nconst three = `\n${one}\n`\nclass Four {}\nthrow new Error('six')"
    )
    result = js.execute(cell)
    assert not result.success
    assert "Error: six" in result.stderr and "<evalScript>:7:" in result.stderr


def test_a_class_value_is_not_a_declaration(js: Sandbox) -> None:
    assert run(js, "let made =\nclass Made {};\n[typeof made, typeof Made]") == (
        "[ 'function', 'undefined' ]\n"
    )


@pytest.mark.parametrize(
    ("cell", "echo"),
    [
        ("1 + 2", "3\n"),
        ("'it' + 's'", "'its'\n"),
        ('"it\'s"', '"it\'s"\n'),
        ("null", "null\n"),
        ("let quiet = 1", ""),
        ("console.log('printed')", "printed\n"),  # console.log's undefined is not echoed
        (
            "new Map([['a', {n: [1, {deep: {er: 1}}]}]])",
            "Map(1) { 'a' => { n: [ 1, [Object] ] } }\n",
        ),
        ("new Set([1, 'two'])", "Set(2) { 1, 'two' }\n"),
        ("({a: 1, 'b-c': [], [Symbol('s')]: null})", "{ a: 1, 'b-c': [], [Symbol(s)]: null }\n"),
        ("class Point { constructor() { this.x = 1 } }; new Point()", "Point { x: 1 }\n"),
        (
            "[class A {}, function named() {}, () => 1]",
            "[ [class A], [Function: named], [Function (anonymous)] ]\n",
        ),
        ("let loop = {}; loop.self = loop; loop", "<ref *1> { self: [Circular *1] }\n"),
        ("[1, , 3]", "[ 1, <1 empty item>, 3 ]\n"),
        ("new Uint8Array([1, 2])", "Uint8Array(2) [ 1, 2 ]\n"),
        ("Object.create(null)", "[Object: null prototype] {}\n"),
        ("-0", "-0\n"),
        ("10n", "10n\n"),
    ],
)
def test_echo_looks_like_the_node_repl(js: Sandbox, cell: str, echo: str) -> None:
    assert run(js, cell) == echo


def test_long_values_are_truncated(js: Sandbox) -> None:
    out = run(js, "Array.from({length: 250}, (_, i) => i)")
    assert out.startswith("[\n  0, 1, 2,") and out.endswith("... 150 more items\n]\n")
    assert len(out.splitlines()) < 12
    long_string = run(js, "'x'.repeat(20000)")
    assert long_string.endswith("'... 10000 more characters\n")
    wide = run(js, "Object.fromEntries(Array.from({length: 300}, (_, i) => [`k${i}`, {v: [i]}]))")
    assert "... 200 more properties" in wide and len(wide) < 5000


def test_let_and_const_values_are_persisted_globals() -> None:
    with create_sandbox(RuntimeType.JAVASCRIPT, auto_persist_globals=True) as sandbox:
        result = sandbox.execute("let kept = [1, 2]; const fixed = 'x'; class Gone {}")
        assert result.success, result.stderr
        assert {"kept", "fixed"} <= set(result.metadata["persisted_globals"])
        assert "Gone" in result.metadata["unsaved_globals"]
        session_id = sandbox.session_id
    reopened = create_sandbox(
        RuntimeType.JAVASCRIPT, session_id=session_id, auto_persist_globals=True
    )
    with reopened:
        assert run(reopened, "[kept, fixed]") == "[ [ 1, 2 ], 'x' ]\n"
        assert run(reopened, "let kept = 3; kept") == "3\n"
