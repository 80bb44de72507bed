"""Looking at runs from the shell: `status`, `show`, `lineage`, `diff`, `best`, `runs`.

Everything is read from the archive; nothing here writes to it.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from evolve.cli._common import (
    EXAMPLE_RUN,
    EXIT_RUN_FAILED,
    FAILED_STATUSES,
    RUN_DIR_HELP,
    RunDirOption,
    examples,
    fail,
    open_run,
    out,
    print_json,
    run_dir_of,
    section,
)
from evolve.dashboard.cost_text import cost_text
from evolve.dashboard.data import ProgramView, RunData, attr, load_run
from evolve.dashboard.rundir import (
    DEFAULT_RUNS_FOLDER,
    RunDirError,
    find_runs,
    locate,
    open_archive,
    pick_run,
)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


def _program(data: RunData, program_id: int) -> ProgramView:
    program = data.by_id.get(program_id)
    if program is None:
        ids = [p.id for p in data.programs]
        span = f"{ids[0]}..{ids[-1]}" if ids else "none"
        fail(f"program {program_id} is not in run {data.run.id} (its program ids: {span}); "
             f"pass --run-dir to pick another run")
    return program


def _stage_dict(record: object) -> dict:
    return {key: attr(record, key, default) for key, default in (
        ("stage", ""), ("score", None), ("valid", False), ("failure", None), ("reason", ""),
        ("wall_s", 0.0), ("cpu_s", 0.0), ("isolation", ""))}


def _load_for_program(run_dir: str | None,
                      program_id: int) -> tuple[Any, RunData, ProgramView]:
    """The archive, the run that holds the program, and the program (or exit 2)."""
    opened = open_run(run_dir)
    record = opened.archive.program(program_id)
    run_id = opened.run_id if record is None else int(attr(record, "run_id", opened.run_id))
    data = load_run(opened.archive, run_id)
    return opened.archive, data, _program(data, program_id)


def status(
    run_dir: Annotated[str | None, typer.Argument(help=RUN_DIR_HELP, show_default=False)] = None,
    run_dir_option: RunDirOption = None,
    run_id: Annotated[int | None, typer.Option(help="run id inside a shared archive")] = None,
    as_json: JsonOption = False,
) -> None:
    """One-screen summary of a run: budgets, best score, islands, arms, failures, spend.

    Exits 1 when the run failed."""
    from evolve.cli.live import render_snapshot, snapshot_from_run, snapshot_lines

    opened = open_run(run_dir_of(run_dir, run_dir_option), run_id=run_id)
    data = load_run(opened.archive, opened.run_id)
    snap = snapshot_from_run(data)
    if as_json:
        from dataclasses import asdict
        print_json(asdict(snap) | {"folder": str(opened.location.folder or "")})
    else:
        console = out()
        scratch = data.scratchpad()
        if console.is_terminal:
            console.print(render_snapshot(snap, console.width))
            if scratch:
                console.print(Text("scratchpad: ", style="bold") + Text(scratch))
        else:                          # piped: one item per line, nothing boxed or wrapped
            for line in snapshot_lines(snap) + ([f"scratchpad: {scratch}"] if scratch else []):
                typer.echo(line)
    if data.run.status in FAILED_STATUSES:
        raise typer.Exit(EXIT_RUN_FAILED)


def show(
    program_id: Annotated[int, typer.Argument(help="program id (see `evolve best`, the dashboard)")],
    run_dir: RunDirOption = None,
    code: Annotated[bool, typer.Option("--code/--no-code", help="print the program's code")] = True,
    prompt: Annotated[bool, typer.Option("--prompt", help="print the LLM prompt and reply")] = False,
    as_json: JsonOption = False,
) -> None:
    """Everything about one program: scores, metrics, feedback, stages, cost, code."""
    archive, data, program = _load_for_program(run_dir, program_id)
    calls = data.calls_by_program.get(program.id, [])
    stages = [_stage_dict(s) for s in archive.evaluations(program.id)]
    if as_json:
        print_json(program.summary() | {
            "code": program.code, "diff": program.diff, "stages": stages,
            "llm_calls": [{"model": c.model, "purpose": c.purpose, "tokens_in": c.tokens_in,
                           "tokens_out": c.tokens_out, "cost_usd": c.cost_usd,
                           "latency_s": c.latency_s, "error": c.error} for c in calls]})
        return
    console = out()
    table = Table.grid(padding=(0, 2))
    rows = [("program", f"#{program.id} (run {program.run_id})"),
            ("score", program.score_text()), ("valid", str(program.valid)),
            ("status", program.status), ("stage reached", program.stage_reached),
            ("parent", f"#{program.parent_id}" if program.parent_id is not None else "-"),
            ("inspirations", ", ".join(f"#{i}" for i in program.inspiration_ids) or "-"),
            ("island / generation", f"{program.island} / {program.generation}"),
            ("operator", program.arm), ("cost", program.cost_text()),
            ("timings", program.timing_text()[0])]
    if program.timing_text()[1]:
        rows.append(("details", program.timing_text()[1]))
    if program.error_kind or program.error_text:
        rows.append(("error", f"{program.error_kind}: {program.error_text}".strip(": ")))
    for key, value in rows:
        table.add_row(Text(key, style="bold"), Text(str(value)))
    console.print(table)
    if program.metrics:
        metrics = Table("metric", "value", box=None, header_style="bold")
        for key, value in program.metrics.items():
            metrics.add_row(Text(str(key)), Text(str(value)))  # names like "cost[us-west-2a]"
        console.print(metrics)
    if program.feedback:
        console.print(Text("feedback:", style="bold"))
        console.print(Text(program.feedback), soft_wrap=True)
    if stages:
        table = Table("stage", "score", "valid", "failure", "wall s", "reason", box=None,
                      header_style="bold")
        for stage in stages:
            table.add_row(Text(str(stage["stage"])),
                          "-" if stage["score"] is None else f"{stage['score']:.6g}",
                          str(stage["valid"]), Text(str(stage["failure"] or "-")),
                          f"{stage['wall_s']:.2f}", Text(str(stage["reason"])))
        console.print(table)
    for call in calls:
        console.print(Text(f"LLM call: {call.model} ({call.purpose}) {call.tokens_in}+"
                           f"{call.tokens_out} tokens, {call.latency_s:.2f}s, "
                           f"{cost_text(call.cost_usd, int(call.cost_usd is None))}"
                           + (f", error {call.error}" if call.error
                                                          else ""), style="dim"))
        if prompt:
            for role, content in call.messages():
                section(console, role)
                console.print(Text(content), soft_wrap=True)  # unwrapped: copy-paste safe
            section(console, "reply")
            console.print(Text(call.response or ""), soft_wrap=True)
    if code:
        section(console, "code")
        if console.is_terminal:
            console.print(Syntax(program.code, "python", line_numbers=True, word_wrap=True))
        else:                          # piped: the code exactly as stored
            typer.echo(program.code)


def lineage(
    program_id: Annotated[int, typer.Argument(help="program id")],
    run_dir: RunDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """The ancestor chain of a program and every descendant, as a tree."""
    _, data, program = _load_for_program(run_dir, program_id)
    chain = data.ancestors(program.id) + [program]
    if as_json:
        def subtree(pid: int) -> list[dict]:
            return [{"id": c, "score": data.by_id[c].score, "children": subtree(c)}
                    for c in data.children.get(pid, [])]
        print_json({"ancestors": [p.summary() for p in chain[:-1]], "program": program.summary(),
                    "children": subtree(program.id)})
        return

    def label(p: ProgramView, focus: bool = False) -> Text:
        text = Text(f"#{p.id} ", style="bold" if focus else "")
        text.append(p.score_text(), style="cyan" if p.valid else "red")
        text.append(f"  {p.arm or 'initial'}  gen {p.generation}  island {p.island}")
        if p.error_kind:
            text.append(f"  {p.error_kind}", style="red")
        return text

    root = Tree(label(chain[0], chain[0].id == program.id))
    node = root
    for ancestor in chain[1:]:
        node = node.add(label(ancestor, ancestor.id == program.id))

    def add_children(parent_node: Tree, pid: int) -> None:
        for child in data.children.get(pid, []):
            add_children(parent_node.add(label(data.by_id[child])), child)

    add_children(node, program.id)
    out().print(root)


def diff(
    a: Annotated[int, typer.Argument(help="program id (old side)")],
    b: Annotated[int, typer.Argument(help="program id (new side)")],
    run_dir: RunDirOption = None,
    context: Annotated[int, typer.Option(help="lines of context")] = 3,
) -> None:
    """Unified diff between the code of two programs."""
    _, data, left = _load_for_program(run_dir, a)
    right = _program(data, b) if b in data.by_id else _load_for_program(run_dir, b)[2]
    lines = difflib.unified_diff(left.code.splitlines(keepends=True),
                                 right.code.splitlines(keepends=True),
                                 fromfile=f"program {a}", tofile=f"program {b}", n=context)
    text = "".join(lines)
    console = out()
    if not text:
        console.print(f"programs {a} and {b} have the same code")
    elif console.is_terminal:
        console.print(Syntax(text, "diff"))
    else:
        typer.echo(text, nl=False)


def best(
    run_dir: Annotated[str | None, typer.Argument(help=RUN_DIR_HELP, show_default=False)] = None,
    run_dir_option: RunDirOption = None,
    export: Annotated[Path | None, typer.Option("--export", "-e",
                                                help="write the best program's code here")] = None,
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="how many to list")] = 1,
    run_id: Annotated[int | None, typer.Option(help="run id inside a shared archive")] = None,
    as_json: JsonOption = False,
) -> None:
    """The best valid program(s) of a run; --export writes the code of the best to a file.

    Exits 1 when the run has no valid program yet."""
    opened = open_run(run_dir_of(run_dir, run_dir_option), run_id=run_id)
    data = load_run(opened.archive, opened.run_id)
    ranked = sorted((p for p in data.programs if p.valid and p.score is not None),
                    key=lambda p: (-(p.score or 0.0), p.id))[:top]
    if not ranked:
        fail(f"run {data.run.id} has no valid program yet "
             f"({len(data.programs)} evaluated; `evolve status` shows why)", EXIT_RUN_FAILED)
    if export is not None:
        export.parent.mkdir(parents=True, exist_ok=True)
        export.write_text(ranked[0].code)
    if as_json:
        print_json([p.summary() for p in ranked]
                   if top > 1 else ranked[0].summary() | {"code": ranked[0].code})
        return
    console = out()
    table = Table("id", "score", "operator", "island", "gen", "cost", header_style="bold",
                  box=None)
    for p in ranked:
        table.add_row(str(p.id), p.score_text(), Text(p.arm or "initial"), str(p.island),
                      str(p.generation), p.cost_text())
    console.print(table)
    if export is not None:
        typer.echo(f"wrote program {ranked[0].id} to {export}")


def runs(
    folder: Annotated[Path, typer.Argument(help="folder holding run folders")] =
    Path(DEFAULT_RUNS_FOLDER),
    as_json: JsonOption = False,
) -> None:
    """List the runs under a folder, newest first."""
    if not folder.is_dir():
        fail(f"{folder} is not a folder; pass the folder that holds your run folders")
    rows = []
    for path in find_runs(folder):
        try:
            archive = open_archive(locate(path))
            data = load_run(archive, pick_run(archive))
        except (RunDirError, OSError, ValueError) as exc:
            rows.append({"folder": str(path), "error": str(exc)})
            continue
        top = data.best()
        rows.append({"folder": str(path), "run_id": data.run.id, "problem": data.run.problem,
                     "status": data.run.status, "programs": len(data.programs),
                     "best": top.score if top else None, "spent_usd": round(data.spent_usd, 6),
                     "unknown_cost_calls": data.unknown_cost_calls, "spent": data.spent_text(),
                     "started": data.run.started.isoformat(timespec="seconds")
                     if data.run.started else None})
    if as_json:
        print_json(rows)
        return
    if not rows:
        out().print(f"no runs under {folder} (start one with `evolve run`)")
        return
    table = Table("folder", "run", "problem", "status", "programs", "best", "spent", "started",
                  header_style="bold", box=None)
    for row in rows:
        if "error" in row:
            table.add_row(row["folder"], "-", "-", f"unreadable: {row['error']}", "", "", "", "")
            continue
        table.add_row(Text(row["folder"]), str(row["run_id"]), Text(row["problem"]), row["status"],
                      str(row["programs"]), "-" if row["best"] is None else f"{row['best']:.6g}",
                      row["spent"],
                      (row["started"] or "-").replace("T", " ")[:16])
    out().print(table)


def register(app: typer.Typer) -> None:
    run = EXAMPLE_RUN
    app.command(epilog=examples(f"evolve status {run}", f"evolve status -r {run} --json",
                                "evolve status            # the newest run under ./runs"))(status)
    app.command(epilog=examples(f"evolve show 42 -r {run}", f"evolve show 42 -r {run} --prompt "
                                "--no-code", f"evolve show 42 -r {run} --json"))(show)
    app.command(epilog=examples(f"evolve lineage 42 -r {run}",
                                f"evolve lineage 42 -r {run} --json"))(lineage)
    app.command(epilog=examples(f"evolve diff 7 42 -r {run}",
                                f"evolve diff 7 42 -r {run} | less"))(diff)
    app.command(epilog=examples(f"evolve best {run}", f"evolve best {run} --export best.py",
                                f"evolve best -r {run} -k 5 --json"))(best)
    app.command(epilog=examples("evolve runs", "evolve runs ~/experiments --json"))(runs)
