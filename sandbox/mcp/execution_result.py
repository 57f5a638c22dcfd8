"""execute_code's result: what the call did, shaped to fit in one tool result.

Long stdout/stderr is shown as head and tail around a marker that says how much is left out;
everything the sandbox kept is saved in the workspace under ``.sandbox-output/`` for
read_file to page through. Lists the guest controls (files, unsaved globals) are capped,
advice strings are clipped, a markdown table of a DataFrame result is dropped when it does not
fit, and images go inline only while they fit (images.py). If the
result still does not fit, it is rebuilt with smaller allowances, down to a status line that
always fits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from mcp_types import CallToolResult

from sandbox.core.errors import SandboxError
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.result import SandboxResult, TrapReason
from sandbox.core.runtime_type import RuntimeType
from sandbox.mcp.images import LEFT_OUT_ROOM, inline_images
from sandbox.mcp.limits import ServerLimits
from sandbox.mcp.models import ChangedFile, ExecutionOutput, language_of
from sandbox.mcp.results import assemble, serialized_size, utf8_prefix
from sandbox.sessions import changes
from sandbox.sessions.files import session_workspace, write_session_file

OUTPUT_DIR = ".sandbox-output"
# Space kept free for what is only known after a result is chosen (a save that failed).
_SLACK = 1024
# Allowance levels: each retry halves the allowances; the last one keeps only the status.
_LEVELS = 5
_MAX_LISTED = 200
_MAX_STRING = 2000
# A table cut short is no table: one over the allowance is left out (stdout still has it).
_MAX_TABLE = 4096
_HINTS = {
    TrapReason.TIMEOUT: "The code ran past its {timeout:g} s deadline. Make it faster, work on "
    "less data per call, or pass a larger timeout_seconds (at most {max_timeout:g}).",
    TrapReason.FUEL_EXHAUSTED: "The code used up its instruction budget: usually an endless "
    "loop, otherwise too much work for one call. Fix the loop or split the work over calls.",
    TrapReason.MEMORY_LIMIT: "The code needed more than the {memory_mib} MiB memory limit. "
    "Process data in chunks or streams instead of loading it all at once.",
    TrapReason.STACK_OVERFLOW: "Recursion went too deep. Rewrite it as a loop.",
    TrapReason.GUEST_EXIT: "The interpreter itself exited (for example os._exit()); "
    "use sys.exit() or plain returns to end a cell.",
    TrapReason.GUEST_CRASH: "The interpreter crashed. Simplify the code; if it persists, "
    "call reset_workspace.",
    TrapReason.CANCELLED: "The call was cancelled (cancel_execution) before it finished; its "
    "output so far is above. Run it again if it is still wanted.",
}
_RESTARTED = (
    "The interpreter was restarted: variables, functions and imports are gone (re-run the "
    "cells that defined them); workspace files are kept."
)
_RESTORED = (
    "The interpreter was restarted: the globals saved by auto_persist_globals come back, any "
    "listed in unsaved_globals are gone; workspace files are kept."
)


@dataclass(frozen=True)
class _Facts:
    """The parts of an execution result that do not depend on the size allowance."""

    restarted: bool
    reason: str | None
    hint: str | None
    guidance: dict[str, Any] | None
    unsaved: dict[str, str]
    fuel: dict[str, Any] | None


@dataclass(frozen=True)
class _Cut:
    """How much of one output stream a result shows, and where the rest can be read."""

    text: str
    total: int
    kept: int
    shown: int
    file: str | None

    @property
    def truncated(self) -> bool:
        return self.shown < self.total


class _Stream:
    """One output stream of a call: what the code wrote, and what the sandbox kept of it."""

    def __init__(self, name: str, text: str, total: object) -> None:
        self.saved_path = f"{OUTPUT_DIR}/{name}.txt"
        self.text = text
        self.kept = len(text.encode())
        self.total = total if isinstance(total, int) and total >= self.kept else self.kept

    def cut(self, allowance: int) -> _Cut:
        if _json_size(self.text) <= allowance:
            return _Cut(self.text, self.total, self.kept, self.kept, None)
        if allowance < 512:
            return _Cut("", self.total, self.kept, 0, self.saved_path)
        text, omitted = _head_and_tail(self.text, allowance, self.saved_path)
        return _Cut(text, self.total, self.kept, self.kept - omitted, self.saved_path)


class ExecutionShaper:
    """Builds execute_code's result. Call it while holding the session: it reads images from
    the workspace and saves cut output into it."""

    def __init__(self, policy: ExecutionPolicy, limits: ServerLimits) -> None:
        self._policy = policy
        self._limits = limits

    def shape(
        self,
        *,
        session_id: str,
        language: RuntimeType,
        auto_persist_globals: bool,
        result: SandboxResult,
        timeout: float,
        fresh_interpreter: str | None,
    ) -> CallToolResult:
        budget = self._limits.max_result_bytes - _SLACK
        streams = {
            "stdout": _Stream("stdout", result.stdout, result.metadata.get("stdout_bytes")),
            "stderr": _Stream("stderr", result.stderr, result.metadata.get("stderr_bytes")),
        }
        facts = self._facts(auto_persist_globals, result, timeout, fresh_interpreter)
        for level in range(_LEVELS + 1):
            output = self._output(session_id, language, result, facts, streams, budget, level)
            if serialized_size(self._execution_result(output)) <= budget:
                break
        output = self._save_cut_streams(session_id, output, streams)
        call = self._execution_result(output)
        if level < _LEVELS:
            room = self._limits.max_result_bytes - serialized_size(call) - LEFT_OUT_ROOM
            images, left_out = inline_images(session_id, result, room)
            if left_out:
                output = output.model_copy(update={"images_not_shown": left_out})
                call = self._execution_result(output)
            call.content.extend(images)
        return call

    def _execution_result(self, output: ExecutionOutput) -> CallToolResult:
        return assemble(
            output,
            _execution_text(output),
            is_error=not output.success,
            legacy_text=self._limits.legacy_text_content,
        )

    def _facts(
        self,
        auto_persist_globals: bool,
        result: SandboxResult,
        timeout: float,
        fresh_interpreter: str | None,
    ) -> _Facts:
        restarted = bool(result.metadata.get("session_reset"))
        reason = str(result.metadata.get("session_reset_reason")) if restarted else None
        if (
            not restarted
            and fresh_interpreter is not None
            and not result.metadata.get("state_restored")
        ):  # a reattached session whose interpreter resumed its saved state lost nothing
            restarted, reason = True, fresh_interpreter
        guidance = result.metadata.get("error_guidance")
        hint: str | None = None
        if result.trap_reason is not None:
            # The sandbox's own trap advice names host-side knobs; this one names the tool's.
            hint = _HINTS[result.trap_reason].format(
                timeout=timeout,
                max_timeout=self._limits.max_timeout_seconds,
                memory_mib=self._policy.memory_bytes // (1024 * 1024),
            )
        elif guidance:
            hint = str(guidance.get("message"))
        elif not result.success:
            hint = "The code failed; the error is in stderr."
        if restarted:
            restart = _RESTORED if auto_persist_globals else _RESTARTED
            hint = f"{hint} {restart}" if hint else restart
        return _Facts(
            restarted=restarted,
            reason=reason,
            hint=hint,
            guidance=guidance,
            unsaved=result.metadata.get("unsaved_globals") or {},
            fuel=result.metadata.get("fuel_analysis"),
        )

    def _output(
        self,
        session_id: str,
        language: RuntimeType,
        result: SandboxResult,
        facts: _Facts,
        streams: dict[str, _Stream],
        budget: int,
        level: int,
    ) -> ExecutionOutput:
        minimal = level == _LEVELS
        listed = 0 if minimal else _MAX_LISTED >> level
        clip = 200 if minimal else _MAX_STRING >> level
        stdout = streams["stdout"].cut(0 if minimal else (budget // 6) >> level)
        stderr = streams["stderr"].cut(0 if minimal else (budget // 12) >> level)
        created = [_clip(path, clip) for path in result.files_created[:listed]]
        room = max(0, listed - len(created))
        modified = [_clip(path, clip) for path in result.files_modified[:room]]
        unsaved = list(facts.unsaved.items())[:listed]
        table = result.metadata.get("display_markdown")
        fits = isinstance(table, str) and not minimal and len(table) <= _MAX_TABLE >> level
        return ExecutionOutput(
            session_id=session_id,
            language=language_of(language),
            success=result.success,
            stdout=stdout.text,
            stderr=stderr.text,
            exit_code=result.exit_code,
            trap_reason=result.trap_reason.value if result.trap_reason else None,
            interpreter_restarted=facts.restarted,
            restart_reason=facts.reason,
            unsaved_globals={_clip(k, clip): _clip(str(v), clip) for k, v in unsaved},
            stdout_truncated=stdout.truncated,
            stderr_truncated=stderr.truncated,
            stdout_bytes=stdout.total,
            stdout_kept_bytes=stdout.kept,
            stdout_shown_bytes=stdout.shown,
            stdout_file=stdout.file,
            stderr_bytes=stderr.total,
            stderr_kept_bytes=stderr.kept,
            stderr_shown_bytes=stderr.shown,
            stderr_file=stderr.file,
            files_created=created,
            files_modified=modified,
            files_not_listed=len(result.files_created)
            + len(result.files_modified)
            - len(created)
            - len(modified),
            images_not_shown=[],
            files_changed=[
                ChangedFile(
                    absolute=f"{self._policy.guest_mount_path}/{path}",
                    relative=path,
                    filename=PurePosixPath(path).name,
                )
                for path in dict.fromkeys([*created, *modified])
            ],
            table_markdown=table if fits else None,
            duration_ms=result.duration_ms,
            execution_time_ms=result.duration_ms,
            fuel_consumed=result.fuel_consumed,
            memory_used_bytes=result.memory_used_bytes,
            hint=_clip(facts.hint, clip) if facts.hint else None,
            error_guidance=None if minimal else _clip_strings(facts.guidance, clip),
            fuel_analysis=None if minimal else facts.fuel,
        )

    def _save_cut_streams(
        self, session_id: str, output: ExecutionOutput, streams: dict[str, _Stream]
    ) -> ExecutionOutput:
        """Save each stream the result shows only part of; say so where the save failed."""
        update: dict[str, Any] = {}
        for name, stream in streams.items():
            if getattr(output, f"{name}_file") is None:
                continue
            problem = self._save(session_id, stream.saved_path, stream.text)
            if problem is not None:
                update[f"{name}_file"] = None
                update[name] = getattr(output, name) + f"\n[{name} could not be saved: {problem}]"
        return output.model_copy(update=update) if update else output

    def _save(self, session_id: str, path: str, text: str) -> str | None:
        """Write ``text`` into the workspace within its quota; the problem, or None if saved."""
        data = utf8_prefix(text.encode(), self._limits.max_file_bytes)
        try:
            files = changes.snapshot(session_workspace(session_id))
            files.pop(path, None)  # the previous call's saved output is replaced
            used = sum(size for size, _ in files.values())
            if used + len(data) > self._policy.workspace_max_bytes:
                return "the workspace is too full"
            write_session_file(session_id, path, data)
        except (OSError, SandboxError) as error:
            return _clip(str(getattr(error, "strerror", None) or error), 200)
        return None


def _head_and_tail(text: str, allowance: int, saved: str) -> tuple[str, int]:
    """Three quarters head, one quarter tail, cut at line ends where that costs little.

    Returns the excerpt and how many bytes of ``text`` it leaves out.
    """
    room = allowance - 200  # the marker
    head = text[: _prefix_within(text, room * 3 // 4)]
    if (newline := head.rfind("\n")) > len(head) * 3 // 4:
        head = head[: newline + 1]
    rest = text[len(head) :]
    tail = rest[len(rest) - _suffix_within(rest, room - _json_size(head)) :]
    if (newline := tail.find("\n")) != -1 and newline < len(tail) // 4:
        tail = tail[newline + 1 :]
    omitted = len(rest.encode()) - len(tail.encode())
    marker = f"\n[... {omitted} bytes left out here; all of it is in {saved} ...]\n"
    return head + marker + tail, omitted


def _json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def _prefix_within(text: str, budget: int) -> int:
    """The longest n for which text[:n] takes at most ``budget`` bytes as a JSON string."""
    low, high = 0, min(len(text), max(budget, 0))
    while low < high:
        middle = (low + high + 1) // 2
        if _json_size(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _suffix_within(text: str, budget: int) -> int:
    """The longest n for which text[-n:] takes at most ``budget`` bytes as a JSON string."""
    low, high = 0, min(len(text), max(budget, 0))
    while low < high:
        middle = (low + high + 1) // 2
        if _json_size(text[len(text) - middle :]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " [...]"


def _clip_strings(value: Any, limit: int) -> Any:
    """``value`` with every string clipped and every list cut to ``limit // 100`` items."""
    if isinstance(value, str):
        return _clip(value, limit)
    if isinstance(value, list):
        return [_clip_strings(item, limit) for item in value[: max(1, limit // 100)]]
    if isinstance(value, dict):
        return {key: _clip_strings(item, limit) for key, item in value.items()}
    return value


def _execution_text(output: ExecutionOutput) -> str:
    """What a model reads first: the output itself, then one status line and any advice."""
    parts: list[str] = []
    if output.stdout:
        parts.append(output.stdout.rstrip("\n"))
    if output.stderr:
        parts.append("[stderr]\n" + output.stderr.rstrip("\n"))
    if output.success:
        status = "ok"
    elif output.trap_reason:
        status = f"stopped: {output.trap_reason}"
    else:
        status = f"failed, exit code {output.exit_code}"
    parts.append(
        f"[{status} · {output.language} session {output.session_id} · {output.duration_ms:.0f} ms]"
    )
    for label, paths in (("created", output.files_created), ("modified", output.files_modified)):
        if paths:
            parts.append(f"files {label}: {', '.join(paths)}")
    if output.files_not_listed:
        parts.append(f"{output.files_not_listed} more files changed (get_workspace_info)")
    if output.unsaved_globals:
        unsaved = ", ".join(f"{name} ({why})" for name, why in output.unsaved_globals.items())
        parts.append(f"not persisted: {unsaved}")
    for name in ("stdout", "stderr"):
        if getattr(output, f"{name}_truncated"):
            parts.append(_truncation_note(output, name))
    if output.images_not_shown:
        parts.append(
            f"images not shown (too large for one result): {', '.join(output.images_not_shown)}; "
            "read_file them with encoding='base64'"
        )
    if output.hint:
        parts.append(f"hint: {output.hint}")
    if output.error_guidance and not output.trap_reason:
        parts.extend(f"- {step}" for step in output.error_guidance.get("actionable_guidance", []))
        if example := output.error_guidance.get("example"):
            parts.append(f"example:\n{example}")
    return "\n".join(parts)


def _truncation_note(output: ExecutionOutput, name: str) -> str:
    total = getattr(output, f"{name}_bytes")
    kept = getattr(output, f"{name}_kept_bytes")
    shown = getattr(output, f"{name}_shown_bytes")
    saved = getattr(output, f"{name}_file")
    note = f"[{name} truncated: {total} bytes written, {kept} kept by the sandbox, {shown} shown"
    if saved:
        note += f"; all {kept} kept bytes are in {saved}: page through them with read_file"
    if total > kept:
        note += "; print less, or write large output to a file"
    return note + "]"
