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

Example: from sandbox_utils import grep; grep(r"TODO", "src", glob="*.py")
"""

import csv
import errno
import fnmatch
import json
import os
import re
import stat
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import TypeAlias, TypedDict

__all__ = [
    "csv_to_json",
    "file_info",
    "find",
    "grep",
    "head",
    "json_to_csv",
    "tail",
    "tree",
    "wc",
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


def find(pattern: str = "*", path: StrPath = ".") -> list[str]:
    """Glob instead of `find`: "*.csv" looks in `path` only, "**/*.csv" at any depth."""
    root = _directory(path)
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
    path: StrPath = ".",
    glob: str = "*",
    ignore_case: bool = False,
    max_matches: int = 200,
) -> list[tuple[str, int, str]]:
    """`grep -rn` with a Python regex over files whose name matches glob; binary files skipped.

    max_matches keeps a broad pattern from flooding the output: the search stops there.
    """
    try:
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as error:
        raise ValueError(f"grep({pattern!r}): invalid regular expression: {error}") from None
    if max_matches < 1:
        raise ValueError(f"grep({pattern!r}): max_matches must be at least 1, got {max_matches}")
    target = os.fspath(path)
    if os.path.isfile(target):
        files = [target]
    else:
        files = [name for name in find("**/" + glob, target) if os.path.isfile(name)]
    matches: list[tuple[str, int, str]] = []
    for name in files:
        with open(name, "rb") as handle:
            data = handle.read()
        if b"\0" in data:
            continue
        lines = data.decode("utf-8", errors="replace").split("\n")
        if lines[-1] == "":
            lines.pop()  # the final newline ends the last line; it does not start another
        for number, line in enumerate(lines, 1):
            line = line.removesuffix("\r")
            if regex.search(line):
                matches.append((name, number, line))
                if len(matches) == max_matches:
                    return matches
    return matches


def _check_count(helper: str, path: StrPath, n: int) -> None:
    if n < 0:
        raise ValueError(f"{helper}({os.fspath(path)!r}): n must be 0 or more, got {n}")


def head(path: StrPath, n: int = 10) -> str:
    """The first n lines with their newlines, read lazily so a huge file costs little."""
    _check_count("head", path, n)
    with open(path, "rb") as handle:
        return b"".join(islice(handle, n)).decode("utf-8", errors="replace")


def tail(path: StrPath, n: int = 10) -> str:
    """The last n lines with their newlines: the usual look at the end of a log."""
    _check_count("tail", path, n)
    with open(path, "rb") as handle:
        return b"".join(deque(handle, maxlen=n)).decode("utf-8", errors="replace")


def wc(path: StrPath) -> WordCount:
    """Counts as `wc` makes them: newlines, runs of non-whitespace bytes, size in bytes."""
    with open(path, "rb") as handle:
        data = handle.read()
    return {"lines": data.count(b"\n"), "words": len(data.split()), "bytes": len(data)}


def csv_to_json(csv_path: StrPath, json_path: StrPath | None = None) -> list[dict[str, str]]:
    """Rows keyed by the header row. Values stay strings: guessing types would mangle IDs
    and zip codes with leading zeros; convert the columns you need. Short rows get "".
    """
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
