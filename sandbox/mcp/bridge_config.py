"""Which MCP servers ``--bridge`` connects: a servers file, or the clients' own config files.

``--bridge FILE`` reads ``{"mcpServers": {name: {...}}}`` (VS Code's ``{"servers": ...}``
too): a stdio server is ``command`` + ``args`` + ``env`` (+ ``cwd``), a Streamable HTTP one
``url`` + ``headers``. ``--bridge-discover`` reads the files MCP clients keep, project level
first (the current directory), then user level, and the first definition of a name wins:
.mcp.json, .cursor/mcp.json, .vscode/mcp.json, .gemini/settings.json, then ~/.claude.json
(its top level and its entry for this project), ~/.cursor/mcp.json,
~/.config/zed/settings.json, ~/.gemini/settings.json, ~/.codex/config.toml. Entries that start
this server itself are skipped, so a client config that lists llm-wasm-mcp does not recurse.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.mcp.auth import ServerConfigError

_SELF = ("llm-wasm-mcp", "sandbox.mcp.server", "llm-wasm-sandbox")
_VARIABLE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}")
# A JSON string, or a comment (JSONC: VS Code and Zed settings), or a trailing comma.
_JSONC = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/|,(?=\s*[}\]])', re.S)


@dataclass(frozen=True)
class BridgedServer:
    """How to reach one MCP server."""

    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: Path | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    source: str = ""


def load_bridge_file(path: Path) -> dict[str, BridgedServer]:
    """The servers of a ``--bridge`` file; bad input names the server and the field."""
    try:
        document = json.loads(_uncomment(path.read_text(encoding="utf-8")))
    except OSError as error:
        raise ServerConfigError(f"--bridge {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise ServerConfigError(f"--bridge {path} is not JSON: {error}") from None
    entries = _entries(document, ("mcpServers", "servers"))
    if entries is None:
        raise ServerConfigError(
            f'--bridge {path}: expected {{"mcpServers": {{"name": {{"command": ..., "args": '
            '[...]} or {"url": ...}}}}'
        )
    servers = {}
    for name, entry in entries.items():
        server = _server(entry, f"{path}: mcpServers.{name}", strict=True)
        if server is not None:
            servers[name] = server
    return servers


def discover(project: Path, home: Path) -> tuple[dict[str, BridgedServer], list[str]]:
    """The servers the MCP clients' config files define, and the files that defined any."""
    project_level = [
        (project / ".mcp.json", ("mcpServers",)),
        (project / ".cursor/mcp.json", ("mcpServers",)),
        (project / ".vscode/mcp.json", ("servers",)),
        (project / ".gemini/settings.json", ("mcpServers",)),
    ]
    user_level = [
        (home / ".claude.json", ("mcpServers",)),
        (home / ".cursor/mcp.json", ("mcpServers",)),
        (home / ".config/zed/settings.json", ("context_servers",)),
        (home / ".gemini/settings.json", ("mcpServers",)),
        (home / ".codex/config.toml", ("mcp_servers",)),
    ]
    servers: dict[str, BridgedServer] = {}
    used: list[str] = []
    for path, keys in [*project_level, *user_level]:
        document = _read_client_file(path)
        if document is None:
            continue
        found = dict(_entries(document, keys) or {})
        if path.name == ".claude.json":  # its per-project servers sit under projects.<dir>
            project_entry = (document.get("projects") or {}).get(str(project)) or {}
            found = {**found, **(_entries(project_entry, ("mcpServers",)) or {})}
        added = 0
        for name, entry in found.items():
            server = _server(entry, f"{path}: {name}", strict=False)
            if server is not None and name not in servers:
                servers[name] = server
                added += 1
        if added:
            used.append(str(path))
    return servers, used


def _read_client_file(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
        document = tomllib.loads(text) if path.suffix == ".toml" else json.loads(_uncomment(text))
    except (OSError, ValueError):
        return None  # absent or unreadable: discovery goes on with the next file
    return document if isinstance(document, dict) else None


def _entries(document: object, keys: tuple[str, ...]) -> Mapping[str, Any] | None:
    if not isinstance(document, dict):
        return None
    for key in keys:
        value = document.get(key)
        if isinstance(value, dict):
            return value
    return None


def _server(entry: object, where: str, *, strict: bool) -> BridgedServer | None:
    """One entry, in any client's spelling; None (or, when strict, an error) if unusable."""

    def refuse(message: str) -> None:
        if strict:
            raise ServerConfigError(f"{where}: {message}")

    if not isinstance(entry, dict):
        refuse("must be an object with a command or a url")
        return None
    command = entry.get("command")
    if isinstance(command, dict):  # Zed: {"command": {"path", "args", "env"}}
        entry = {**entry, **command, "command": command.get("path")}
        command = entry["command"]
    url = entry.get("url") or entry.get("httpUrl") or entry.get("serverUrl")
    kind = entry.get("type") or entry.get("transport")
    if kind == "sse":
        refuse("SSE servers are not supported; use the server's Streamable HTTP URL")
        return None
    if isinstance(url, str) and url:
        headers = entry.get("headers") or entry.get("http_headers") or {}
        if not isinstance(headers, dict):
            refuse("headers must be an object of name -> value")
            return None
        return BridgedServer(
            url=_expand(url),
            headers=tuple((str(k), _expand(str(v))) for k, v in headers.items()),
            source=where,
        )
    if not isinstance(command, str) or not command:
        refuse('needs "command" (a stdio server) or "url" (Streamable HTTP)')
        return None
    args = entry.get("args") or []
    env = entry.get("env") or {}
    if not isinstance(args, list) or not isinstance(env, dict):
        refuse('"args" must be a list of strings and "env" an object')
        return None
    if any(marker in " ".join([command, *map(str, args)]) for marker in _SELF):
        return None  # this server itself
    cwd = entry.get("cwd")
    return BridgedServer(
        command=_expand(command),
        args=tuple(_expand(str(arg)) for arg in args),
        env=tuple((str(k), _expand(str(v))) for k, v in env.items()),
        cwd=Path(cwd) if isinstance(cwd, str) else None,
        source=where,
    )


def _expand(text: str) -> str:
    """``${NAME}`` (and VS Code's ``${env:NAME}``) from this process's environment."""
    return _VARIABLE.sub(lambda match: os.environ.get(match.group(1), ""), text)


def _uncomment(text: str) -> str:
    return _JSONC.sub(lambda match: match.group(1) or "", text)
