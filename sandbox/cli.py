"""The ``llm-wasm-sandbox`` command: run code in a sandbox, or serve the sandbox over MCP."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sandbox.batch.cli import batch, eval_app
from sandbox.cli_policy import MIB, policy_from_options
from sandbox.core.errors import SandboxError
from sandbox.core.runtime_type import RuntimeType
from sandbox.factory import create_sandbox
from sandbox.host.module_cache import cache_dir, clear_cache
from sandbox.runtimes import runtime_for
from sandbox.sessions.files import delete_session_workspace

app = typer.Typer(
    help="Run untrusted Python and JavaScript inside WebAssembly, with hard limits.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _commands() -> None:
    """Keep `run` a named sub-command (typer would otherwise collapse a lone command)."""


@app.command()
def run(
    file: Annotated[
        Path | None, typer.Argument(help="Source file to run ('-' reads standard input).")
    ] = None,
    code: Annotated[str | None, typer.Option("-c", "--code", help="Code to run.")] = None,
    lang: Annotated[
        RuntimeType, typer.Option("--lang", help="Guest language.")
    ] = RuntimeType.PYTHON,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the SandboxResult as JSON.")
    ] = False,
    timeout: Annotated[float | None, typer.Option(help="Wall-clock deadline in seconds.")] = None,
    memory: Annotated[int | None, typer.Option(help="Guest memory limit in MiB.")] = None,
    session: Annotated[str | None, typer.Option(help="Reuse this session's workspace.")] = None,
) -> None:
    """Run FILE or -c CODE; print the guest's output and exit with the guest's exit code."""
    source = _read_source(file, code)
    policy = policy_from_options(timeout, memory)
    _prepare_with_progress([lang])
    # A one-shot run boots its own interpreter (no warm pool to refill for nothing) under a
    # fresh session, and leaves nothing behind; --session keeps the workspace for later runs.
    one_shot = session is None
    try:
        sandbox = create_sandbox(lang, policy, session_id=session or str(uuid.uuid4()))
    except SandboxError as error:
        raise typer.BadParameter(str(error)) from None
    try:
        with sandbox:
            # Output is shown as the guest writes it; --json prints only the final result.
            result = sandbox.execute(source, on_output=None if json_output else _echo_output)
    finally:
        if one_shot:
            delete_session_workspace(sandbox.session_id)
    if json_output:
        typer.echo(result.model_dump_json(indent=2))
    else:
        if result.trap_reason:
            sys.stderr.write(f"[sandbox] stopped: {result.trap_reason.value}\n")
    raise typer.Exit(result.exit_code if result.exit_code >= 0 else 128)


app.command()(batch)
app.add_typer(eval_app, name="eval")


def _echo_output(stream: str, text: str) -> None:
    """Write a chunk of the guest's output to ours at once (a pipe would buffer it)."""
    target = sys.stdout if stream == "stdout" else sys.stderr
    target.write(text)
    target.flush()


@app.command(
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
    add_help_option=False,
)
def mcp(ctx: typer.Context) -> None:
    """Serve the sandbox to MCP clients: the same options as llm-wasm-mcp (see --help)."""
    from sandbox.mcp.server import main as serve_mcp  # the MCP SDK loads only for this command

    serve_mcp(ctx.args)


@app.command()
def prepare(
    lang: Annotated[
        list[RuntimeType] | None,
        typer.Option("--lang", help="Prepare only this runtime (repeatable); default: all."),
    ] = None,
) -> None:
    """Compile every runtime for this machine ahead of time (for images and CI).

    The first use of a runtime otherwise compiles it then: minutes for Python.
    """
    chosen = lang or list(RuntimeType)
    _prepare_with_progress(chosen, always=True)
    typer.echo(f"ready: {', '.join(kind.value for kind in chosen)} (cache: {cache_dir()})")


@app.command()
def cache(
    clear: Annotated[bool, typer.Option("--clear", help="Delete every compiled artifact.")] = False,
) -> None:
    """Show where compiled runtimes are cached, or empty the cache with --clear."""
    if clear:
        freed = clear_cache()
        typer.echo(f"cleared {cache_dir()} ({freed / MIB:.0f} MiB freed)")
        return
    artifacts = sorted(cache_dir().glob("*.cwasm"))
    typer.echo(f"{cache_dir()}: {len(artifacts)} compiled artifacts")
    for artifact in artifacts:
        typer.echo(f"  {artifact.name}  {artifact.stat().st_size / MIB:.0f} MiB")


def _prepare_with_progress(kinds: list[RuntimeType], *, always: bool = False) -> None:
    """Compile what is not cached yet, showing what is being prepared and for how long."""
    for kind in kinds:
        program = runtime_for(kind)
        if program.is_prepared():
            if always:
                typer.echo(f"{kind.value}: already compiled", err=True)
            continue
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=not always) as progress:
            progress.add_task(
                f"compiling the {kind.value} runtime for this machine (once; Python takes "
                "a few minutes)",
                total=None,
            )
            program.prepare()


def _read_source(file: Path | None, code: str | None) -> str:
    if (file is None) == (code is None):
        raise typer.BadParameter("give exactly one of FILE or -c CODE")
    if code is not None:
        return code
    assert file is not None
    if str(file) == "-":
        return sys.stdin.read()
    try:
        return file.read_text(encoding="utf-8")
    except OSError as error:
        raise typer.BadParameter(f"cannot read {file}: {error.strerror}") from None


def main() -> None:
    app()
