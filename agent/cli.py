"""The `synthloop` command line.

Heavy modules (langgraph, backends, the LLM client) are imported inside the commands so `synthloop --help`
stays fast. User mistakes print one `error: …` line on stderr and exit with code 2.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from synthloop.agent.planner.factories import make_planner, make_reviser

if TYPE_CHECKING:
    from synthloop.agent.config import RunConfig
    from synthloop.agent.runner import RunSummary

app = typer.Typer(
    name="synthloop",
    help="Turn a plain-language request into a checked, exported computer-vision dataset.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_USER_ERROR = 2
EXIT_TERMINATED = 128 + signal.SIGTERM
MAX_IMAGES = 1_000_000
LARGE_RUN_IMAGES = 10_000  # above this, a run prints its time and disk estimate and checks the free space
MB_PER_512_IMAGE = 0.4  # measured: PNG, annotations, manifest and records of one 512² image
# Seconds per 512² image, the whole loop (render, annotate, critique, export) on 2 busy CPU cores: the difference
# of `synthloop run` at 30 and 120 images (2026-12-01). Other renderers (diffusion on a GPU, plugins) have no
# figure here and get a disk estimate only.
SECONDS_PER_512_IMAGE = {"compositor": 0.13, "copy_paste": 0.18}

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML/JSON run config (LLM endpoint, backends, budgets).")
]


ForceOption = Annotated[bool, typer.Option("--force", help="Start a large run even when the disk looks too small "
                                                           "for it.")]
# The options of the evals that print a report and can also write it as JSON.
JsonReportOption = Annotated[Path | None, typer.Option("--out", help="Write counts and rates as JSON here.")]
OverwriteOption = Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")]
ZoomOption = Annotated[bool, typer.Option("--zoom/--no-zoom", help="Recognisability judge: also detect on enlarged "
                                                                  "tiles and box windows (small objects; ~8× the "
                                                                  "detector passes).")]

ConsistencyOption = Annotated[bool, typer.Option("--consistency/--no-consistency", help="Label consistency judge: "
                                                 "flag boxes whose look-alikes in other images carry another label "
                                                 "(relabelled boxes; one more pass over the images).")]


class CliError(Exception):
    """Raised inside commands for a user mistake; `main` prints it on one line."""


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C (cleanups and atexit run: the embedded LLM server is stopped)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _exit_now(message: str) -> None:
    """Exit at once (exit code 143) without waiting for busy worker threads: a thread stopped in the middle of
    native code at interpreter shutdown can abort the process; the embedded LLM server is stopped first."""
    import os

    from synthloop.tools.llm.local_server import stop_all_servers

    stop_all_servers()
    typer.echo(message, err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_TERMINATED)


def _check_text(name: str, text: str) -> str:
    """`text` if it is valid Unicode (bytes that are not UTF-8 reach argv as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CliError(f"{name} is not valid UTF-8 text (character {exc.start}); re-type it or fix the terminal's "
                       "encoding") from exc
    return text


def _check_new_file(option: str, path: Path | None, force: bool) -> None:
    """Refuse to overwrite an existing file (or to write onto a folder) unless `--force`; an option not given
    (None) passes."""
    if path is None:
        return
    if path.is_dir():
        raise CliError(f"{option} {path} is a directory; give a file path")
    if path.exists() and not force:
        raise CliError(f"{option} {path} already exists; pass --force to overwrite it")


def run_estimate(n_images: int, width: int, height: int, renderer: str) -> tuple[float, float | None]:
    """(megabytes on disk, seconds or None) that a run of `n_images` images of `width`×`height` needs: 0.4 MB and
    the renderer's measured seconds per 512² image, scaled by the image area."""
    scale = width * height / 512**2
    per_image = SECONDS_PER_512_IMAGE.get(renderer)
    return n_images * MB_PER_512_IMAGE * scale, None if per_image is None else n_images * per_image * scale


def _free_megabytes(path: Path) -> float:
    """Free space of the file system `path` is (or will be) on: that of its nearest existing parent."""
    import shutil

    existing = path.resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free / 1e6


def _size(megabytes: float) -> str:
    if megabytes >= 1e6:
        return f"{megabytes / 1e6:.1f} TB"
    return f"{megabytes / 1e3:.1f} GB" if megabytes >= 1e3 else f"{megabytes:.0f} MB"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _capacity_check(out: Path, renderer: str, force: bool) -> Any:
    """What runs when a spec is approved: a large run prints its time and disk estimate, and is refused when the
    disk cannot hold it (unless `--force`); the run stays resumable."""

    def check(spec: Any) -> None:
        if spec.n_images <= LARGE_RUN_IMAGES:
            return
        megabytes, seconds = run_estimate(spec.n_images, spec.width, spec.height, renderer)
        free = _free_megabytes(out)
        took = f"about {_duration(seconds)} with {renderer}" if seconds is not None else (
            f"no time figure for renderer {renderer}")
        typer.echo(f"estimate: {spec.n_images:,} images of {spec.width}x{spec.height}: about {_size(megabytes)} on "
                   f"disk ({_size(free)} free), {took}", err=True)
        if megabytes > free and not force:
            from synthloop.agent.errors import UserInputError

            raise UserInputError(f"{out} has {_size(free)} free but this run needs about {_size(megabytes)}: free "
                                 "some space, lower the count or the image size, or pass --force")

    return check


AssetsOption = Annotated[Path | None, typer.Option(
    "--assets", help="Your own cut-outs: one folder per class of PNGs with transparency (DIR/cup/*.png).")]
ReferenceCocoOption = Annotated[Path | None, typer.Option(
    "--reference-coco", help="Your real COCO instances file: layouts follow its statistics, its objects are "
                             "cut out and pasted.")]
ReferenceImagesOption = Annotated[Path | None, typer.Option(
    "--reference-images", help="The images folder of --reference-coco.")]
ExecutorOption = Annotated[str | None, typer.Option(
    "--executor", help="Where the renderer and annotator run: local (threads, the default) or ray (Ray actors; "
                       "pip install 'synthloop[ray]'). The dataset is the same either way.")]
AddressOption = Annotated[str | None, typer.Option(
    "--address", help="Ray cluster address for --executor ray (default: start Ray on this machine).")]


def _with_executor(config: RunConfig, executor: str | None, address: str | None) -> RunConfig:
    """The run config with the engine chosen on the command line (`--executor`, `--address`)."""
    if executor is None and address is None:
        return config
    from pydantic import ValidationError

    from synthloop.agent.config import ExecutorConfig

    if executor is not None and executor not in ("local", "ray"):
        raise CliError(f"--executor must be local or ray, not {executor!r}")
    engine = executor or config.executor.engine
    if address is not None and engine != "ray":
        raise CliError("--address is the address of a Ray cluster: use it with --executor ray")
    if engine != "ray":
        address = None
    elif address is None:
        address = config.executor.address
    try:
        chosen = ExecutorConfig.model_validate({**config.executor.model_dump(), "engine": engine, "address": address})
    except ValidationError as exc:
        raise CliError(f"--address: {exc.errors()[0]['msg']}") from exc
    return config.model_copy(update={"executor": chosen})


def _load_config(path: Path | None, assets: Path | None = None, reference_coco: Path | None = None,
                 reference_images: Path | None = None) -> RunConfig:
    """The run config from `path`, with the user's own data (--assets, --reference-*) put in its backends."""
    from synthloop.agent.backends import with_user_data
    from synthloop.agent.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    return with_user_data(config, assets=assets, reference_coco=reference_coco, reference_images=reference_images)


def _check_count(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise CliError(f"{name} must be between {low} and {high}, got {value}")


def _check_new_dir(option: str, path: Path | None) -> None:
    """Refuse an output folder that exists with something in it (or is a file); an option not given passes."""
    if path is not None and path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise CliError(f"{option} {path} must be a new or empty directory")


def _check_scene_bench(n: int, size: int, seed: int) -> None:
    """`--n`, `--size` and `--seed` of an eval over rendered scenes."""
    _check_count("--n", n, 1, 100_000)
    _check_count("--size", size, 64, 4096)
    _check_count("--seed", seed, 0, 2**32 - 1)


def _write_report_json(out: Path | None, report: dict[str, Any]) -> None:
    """Write an eval's report to `--out` as indented JSON (atomically); nothing when `--out` is not given."""
    if out is None:
        return
    from synthloop.tools.io import atomic_write_json

    atomic_write_json(out, report, indent=2)


class _Progress:
    """A progress bar on stderr fed by the graph's events."""

    def __init__(self, total: int | None = None, completed: int = 0, before_start: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("rejected {task.fields[rejected]}"), TimeRemainingColumn(), console=self.console,
            transient=False,
        )
        self.task_id = None
        self.rejected = 0
        self.total = total
        self.completed = completed
        self.before_start = before_start  # called with the approved spec, before anything is rendered

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "planning":
            self.console.print("planning…", style="dim")
        elif event in ("kept", "rejected"):
            if self.task_id is None:
                self.progress.start()
                self.task_id = self.progress.add_task("generating", total=self.total, completed=self.completed,
                                                      rejected=0)
            if event == "kept":
                self.progress.advance(self.task_id)
            else:
                self.rejected += 1
                self.progress.update(self.task_id, rejected=self.rejected)
        elif event == "approved":
            from synthloop.agent.summary import format_spec
            from synthloop.tools.types import TaskSpec

            spec = TaskSpec.model_validate(data["spec"])
            self.set_total(spec.n_images)
            if data.get("auto"):  # nobody saw the spec yet: show what runs, defaults included
                self.console.print("Planned dataset:\n" + format_spec(spec), highlight=False)
            if self.before_start is not None:
                self.before_start(spec)
        elif event == "ranking":
            self.stop()
            self.console.print(f"ranking {data['n']} samples…", style="dim")
        elif event == "exporting":
            self.stop()
            self.console.print("exporting…", style="dim")

    def set_total(self, total: int) -> None:
        self.total = total
        if self.task_id is not None:
            self.progress.update(self.task_id, total=total)

    def stop(self) -> None:
        if self.task_id is not None:
            self.progress.stop()
            self.task_id = None


def _interactive_approval(progress: _Progress) -> Any:
    """Ask the user at the terminal to approve the spec, answer the planner's question, or change the spec:
    any reply other than yes/no ("make it 300", "add trucks", "YOLO instead") is a conversational edit."""
    from synthloop.agent.summary import format_spec
    from synthloop.tools.types import TaskSpec

    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        spec = TaskSpec.model_validate(payload["spec"])
        typer.echo("Planned dataset:\n" + format_spec(spec), err=True)
        if not sys.stdin.isatty() and sys.stdin.closed:
            return {"action": "cancel"}
        try:
            if spec.questions:
                answer = input(f"{spec.questions[0].text} ").strip()
                return {"action": "answer", "text": answer} if answer else {"action": "cancel"}
            text = input("Start? [Y/n, or type a change] ").strip()
        except EOFError:
            return {"action": "cancel"}
        reply = text.lower().rstrip(".!")
        if reply in ("", "y", "yes", "ok", "go"):
            progress.set_total(spec.n_images)
            return {"action": "approve"}
        if reply in ("n", "no", "cancel", "quit", "q", "stop"):
            return {"action": "cancel"}
        return {"action": "message", "text": text}

    return handle


def _finish(summary: RunSummary) -> None:
    from synthloop.agent.summary import format_run

    if summary.cancelled:
        typer.echo("cancelled: nothing generated", err=True)
        raise typer.Exit(1)
    typer.echo(format_run(summary))
    if summary.kept < summary.n_images:
        raise typer.Exit(1)


def _run_with_progress(start: Any, total: int | None, completed: int = 0, *, out: Path | None = None,
                       before_start: Any = None) -> None:
    """Drive a run with a progress bar; an LLM endpoint failure says how to resume the run in `out`."""
    progress = _Progress(total, completed, before_start)
    try:
        summary = start(progress)
    except Exception as exc:
        if out is not None and _is_llm_error(exc) and (out / ".work" / "run.json").is_file():
            raise CliError(f"{_one_line(exc)}; the run is kept: `synthloop resume {out} [--config FILE]` "
                           "continues it") from exc
        raise
    finally:
        progress.stop()
    _finish(summary)


def _is_llm_error(exc: BaseException) -> bool:
    """Whether `exc` comes from the LLM client (checked without importing it: `--help` stays light)."""
    client = sys.modules.get("synthloop.tools.llm.client")
    return client is not None and isinstance(exc, client.LLMError)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


@app.command()
def plan(
    request: Annotated[str, typer.Argument(help="What dataset you want, in plain language.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print only the TaskSpec as JSON.")] = False,
    n: Annotated[int | None, typer.Option("--n", help="Number of images (overrides the request).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    config: ConfigOption = None,
) -> None:
    """Plan a request into a TaskSpec without generating anything. Never waits for input."""
    _check_text("the request", request)
    _check_count("--n", n, 1, MAX_IMAGES)
    _check_count("--seed", seed, 0, 2**32 - 1)
    spec = make_planner(_load_config(config), n, seed)(request)
    if as_json:
        typer.echo(json.dumps(spec.model_dump(mode="json"), indent=2))
    else:
        from synthloop.agent.summary import format_spec

        typer.echo(format_spec(spec))


@app.command()
def generate(
    request: Annotated[str, typer.Argument(help="What dataset you want, in plain language.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (new or empty).")],
    n: Annotated[int | None, typer.Option("--n", help="Number of images (overrides the request).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (overrides the request).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve the planned spec without asking; "
                                                           "take documented defaults.")] = False,
    config: ConfigOption = None,
    assets: AssetsOption = None,
    reference_coco: ReferenceCocoOption = None,
    reference_images: ReferenceImagesOption = None,
    force: ForceOption = False,
    executor: ExecutorOption = None,
    address: AddressOption = None,
) -> None:
    """Plan a request, then generate, check and export the dataset."""
    from synthloop.agent.runner import start_run

    _check_text("the request", request)
    _check_count("--n", n, 1, MAX_IMAGES)
    _check_count("--seed", seed, 0, 2**32 - 1)
    if not request.strip():
        raise CliError("the request is empty: describe the images you want")
    cfg = _with_executor(_load_config(config, assets, reference_coco, reference_images), executor, address)
    planner = make_planner(cfg, n, seed)
    reviser = make_reviser(cfg, planner)

    def start(progress: _Progress) -> RunSummary:
        return start_run(out, cfg, request=request, planner=planner, reviser=reviser, auto_approve=yes,
                         on_interrupt=None if yes else _interactive_approval(progress), progress=progress)

    _run_with_progress(start, n, out=out, before_start=_capacity_check(out, cfg.renderer.backend, force))


@app.command("run")
def run_spec(
    spec_file: Annotated[Path, typer.Argument(metavar="SPEC", help="TaskSpec as YAML or JSON.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (new or empty).")],
    config: ConfigOption = None,
    assets: AssetsOption = None,
    reference_coco: ReferenceCocoOption = None,
    reference_images: ReferenceImagesOption = None,
    force: ForceOption = False,
    executor: ExecutorOption = None,
    address: AddressOption = None,
) -> None:
    """Generate a dataset from a spec file (no LLM needed)."""
    from synthloop.agent.runner import start_run
    from synthloop.agent.specfile import load_spec_file

    spec = load_spec_file(spec_file)
    cfg = _with_executor(_load_config(config, assets, reference_coco, reference_images), executor, address)
    _run_with_progress(lambda progress: start_run(out, cfg, spec=spec, auto_approve=True, progress=progress),
                       spec.n_images, out=out, before_start=_capacity_check(out, cfg.renderer.backend, force))


def _check_checkpoint(out: Path, thread_id: str) -> None:
    """Read the run's last state once, as resuming will, so a damaged checkpoint is one error line: sqlite
    reports a broken file, but a checkpoint whose stored values were damaged fails while being decoded."""
    import sqlite3
    from contextlib import closing

    from langgraph.checkpoint.sqlite import SqliteSaver

    from synthloop.agent.graph import build_graph

    path = out / ".work" / "checkpoints.sqlite"
    if not path.is_file():
        return
    try:
        with closing(sqlite3.connect(path)) as connection:
            build_graph(SqliteSaver(connection)).get_state({"configurable": {"thread_id": thread_id}})
    except Exception as exc:  # any decoding failure of a damaged file; the run itself is not touched
        raise CliError(f"the checkpoint {path} is damaged ({type(exc).__name__}: {_one_line(exc)[:200]}); the "
                       "run cannot be resumed") from exc


@app.command()
def resume(
    out: Annotated[Path, typer.Argument(metavar="DIR", help="Output directory of an interrupted run.")],
    config: Annotated[Path | None, typer.Option(
        "--config", help="Point the run at other LLM / VLM endpoints (only the llm and vlm endpoint sections may "
                         "differ from the config the run started with).")] = None,
    force: ForceOption = False,
    executor: ExecutorOption = None,
    address: AddressOption = None,
) -> None:
    """Continue an interrupted run from its last checkpoint (on another engine with --executor, if wanted)."""
    from pydantic import ValidationError

    from synthloop.agent.config import RunConfig, describe_validation_error
    from synthloop.agent.runner import read_run_file, resume_config, resume_run

    run_file = out / ".work" / "run.json"
    try:
        run = read_run_file(out)
    except RecursionError as exc:
        raise CliError(f"cannot read {run_file}: it is nested too deeply") from exc
    if not isinstance(run, dict) or not isinstance(run.get("thread_id"), str):
        raise CliError(f"{run_file} is corrupt (no thread id): the run cannot be resumed")
    try:
        run_config = RunConfig.model_validate(run.get("config"))
    except ValidationError as exc:
        raise CliError(f"{run_file} is corrupt: {describe_validation_error(exc)}") from exc
    _check_checkpoint(out, run["thread_id"])
    if config is not None:
        run_config = resume_config(run_config, _load_config(config))
    run_config = _with_executor(run_config, executor, address)
    changed = config is not None or executor is not None or address is not None
    planner = make_planner(run_config, None, None)
    reviser = make_reviser(run_config, planner)

    def start(progress: _Progress) -> RunSummary:
        return resume_run(out, planner=planner, reviser=reviser, on_interrupt=_interactive_approval(progress),
                          progress=progress, config=run_config if changed else None)

    try:
        total = int(json.loads((out / "spec.json").read_text(encoding="utf-8"))["n_images"])
    except (OSError, ValueError, KeyError, TypeError):
        total = None  # not approved yet, or unreadable: the bar learns the total at approval
    _run_with_progress(start, total, completed=len(list((out / ".work" / "kept").glob("*.json"))), out=out,
                       before_start=_capacity_check(out, run_config.renderer.backend, force))


@app.command()
def chat(
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (default: a new folder under "
                                                          "./runs/).")] = None,
    n: Annotated[int | None, typer.Option("--n", help="Number of images (overrides the request).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (overrides the request).")] = None,
    config: ConfigOption = None,
    assets: AssetsOption = None,
    reference_coco: ReferenceCocoOption = None,
    reference_images: ReferenceImagesOption = None,
    executor: ExecutorOption = None,
    address: AddressOption = None,
) -> None:
    """Talk the dataset through in the terminal: request, questions, spec edits, 'yes' to run.

    One answer per line, so it can be scripted: printf 'cups and plates\\nyes\\n' | synthloop chat.
    End of input cancels.
    """
    from synthloop.agent.chat import Chat, TerminalIO

    if hasattr(sys.stdin, "reconfigure"):  # undecodable answers fail on reading (one error line), not later
        sys.stdin.reconfigure(errors="strict")
    _check_count("--n", n, 1, MAX_IMAGES)
    _check_count("--seed", seed, 0, 2**32 - 1)
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CliError(f"output directory {out} is not a new or empty directory")
    cfg = _with_executor(_load_config(config, assets, reference_coco, reference_images), executor, address)
    planner = make_planner(cfg, n, seed)
    progress = _Progress(n)
    try:
        summary = Chat(TerminalIO(), cfg, planner, make_reviser(cfg, planner), out_dir=out,
                       progress=progress).run()
    finally:
        progress.stop()
    if summary is None:
        typer.echo("cancelled: nothing generated", err=True)
        raise typer.Exit(1)
    _finish(summary)


@app.command()
def ui(
    host: Annotated[str, typer.Option("--host", help="Address to bind; anything but loopback needs --token.")] = (
        "127.0.0.1"),
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8765,
    workspace: Annotated[Path, typer.Option("--workspace", help="Folder holding the runs.")] = Path("runs"),
    token: Annotated[str | None, typer.Option("--token", envvar="SYNTHLOOP_UI_TOKEN",
                                              help="Required on every request (header or cookie).")] = None,
    config: ConfigOption = None,
    assets: AssetsOption = None,
    reference_coco: ReferenceCocoOption = None,
    reference_images: ReferenceImagesOption = None,
    max_runs: Annotated[int, typer.Option("--max-runs", help="Runs that may be active at once (planning, "
                                                             "waiting for approval or generating).")] = 2,
) -> None:
    """Serve the local web chat: conversation, editable spec, progress, gallery, A/B votes, downloads; the
    user's data (--assets, --reference-*) goes into every run's config unless a set uploaded in the UI replaces
    it."""
    import socket

    from synthloop.agent.web.safety import UnsafeRequest, check_bind

    _check_count("--port", port, 1, 65535)
    _check_count("--max-runs", max_runs, 1, 64)
    try:
        check_bind(host, token or None)
    except UnsafeRequest as exc:
        raise CliError(str(exc)) from exc
    if workspace.exists() and not workspace.is_dir():
        raise CliError(f"workspace {workspace} is a file, not a directory")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    cfg = _load_config(config, assets, reference_coco, reference_images)
    from synthloop.agent.web.server import create_app, serve

    app_ = create_app(workspace, config=cfg, planner_factory=lambda c: make_planner(c, None, None),
                      reviser_factory=make_reviser, token=token or None, host=host, port=port,
                      max_active_runs=max_runs)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"synthloop ui on http://{shown}:{port}/{'?token=' + token if token else ''} "
               f"(workspace {workspace.resolve()}; Ctrl-C stops)", err=True)
    try:
        serve(app_, host, port)
    finally:  # SIGTERM or Ctrl-C: active runs stop at their next step, marked stopped (Resume continues them)
        if not app_.state.manager.shutdown():
            _exit_now("stopped: a run was still busy; Resume continues it from its last checkpoint")


@app.command()
def validate(
    out: Annotated[Path, typer.Argument(metavar="DIR", help="An exported dataset directory.")],
) -> None:
    """Check an exported dataset; exit non-zero on any defect."""
    from synthloop.tools.export.validate import validate_dataset

    if not out.is_dir():
        raise CliError(f"{out} is not a directory")
    try:
        defects = validate_dataset(out)
    except RecursionError as exc:
        raise CliError(f"{out}: an annotation file is nested too deeply to read") from exc
    for defect in defects:
        typer.echo(f"defect: {defect}")
    if defects:
        typer.echo(f"{out}: {len(defects)} defect(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{out}: valid")


@app.command("backends")
def list_backends(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every backend per tool: capabilities, options with defaults, and whether it is installed here."""
    from synthloop.agent.backends import all_registries

    rows = [info for registry in all_registries().values() for info in registry.describe()]
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2, default=str))
        return
    for info in rows:
        state = "installed" if info.installed else f"missing: {', '.join(info.missing) or info.error}"
        typer.echo(f"{info.tool:<9} {info.name:<20} {state}")
        if info.description:
            typer.echo(f"    {info.description}")
        if info.capabilities:
            typer.echo("    capabilities: " + ", ".join(f"{k}={v}" for k, v in info.capabilities.items()))
        for name, option in info.options.items():
            default = "required" if option["required"] else f"default {option['default']!r}"
            text = f" — {option['description']}" if option["description"] else ""
            typer.echo(f"    option {name} ({option['type']}, {default}){text}")


@app.command()
def bench(
    n: Annotated[int | None, typer.Option("--n", help="Images per measurement (default 200; diffusion: "
                                                     "4 batches).")] = None,
    size: Annotated[int | None, typer.Option("--size", help="Image side in pixels (default 512; diffusion: the "
                                                           "architecture's own, 512 or 1024).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Render threads.")] = 2,
    ray: Annotated[bool, typer.Option("--ray", help="Also measure the Ray engine at 1 and 2 workers (speed-up, and "
                                                    "overhead against the local engine at 1 worker).")] = False,
    address: AddressOption = None,
    repeat: Annotated[int, typer.Option("--repeat", help="Runs per end-to-end setting, interleaved; the fastest "
                                                         "is reported (a shared machine's load varies).")] = 1,
    renderer: Annotated[str, typer.Option("--renderer", help="Renderer to measure (default options).")] = "compositor",
    arch: Annotated[str, typer.Option("--arch", help="diffusion: sd15 | sdxl (real sizes, random weights).")] = "sd15",
    control: Annotated[str, typer.Option("--control", help="diffusion: none | refine | controlnet.")] = "none",
    steps: Annotated[int, typer.Option("--steps", help="diffusion: denoising steps.")] = 20,
    batch: Annotated[int, typer.Option("--batch", help="diffusion: images per pipeline call.")] = 8,
    dtype: Annotated[str, typer.Option("--dtype", help="diffusion: auto | float32 | float16 | bfloat16.")] = "auto",
) -> None:
    """Measure renderer-only and end-to-end throughput, and the orchestration share; with --renderer diffusion,
    synthloop's diffusion render path against a plain diffusers loop (images/s and their ratio)."""
    _check_count("--size", size, 32, 4096)
    if renderer == "diffusion":
        from synthloop.evals.diffusion_bench import format_diffusion_bench, run_diffusion_bench

        _check_count("--n", n, 1, 10_000)
        _check_count("--steps", steps, 1, 500)
        _check_count("--batch", batch, 1, 256)
        try:
            result = run_diffusion_bench(arch=arch, control=control, steps=steps, batch=batch, size=size, n=n,
                                         dtype=dtype)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        typer.echo(format_diffusion_bench(result))
        return
    from synthloop.evals.throughput import format_bench, run_bench

    _check_count("--n", n, 1, 100_000)
    _check_count("--workers", workers, 1, 256)
    _check_count("--repeat", repeat, 1, 20)
    typer.echo(format_bench(run_bench(n=n or 200, size=size or 512, workers=workers, renderer_name=renderer,
                                       ray=ray, address=address, repeat=repeat)))


@app.command()
def arena(
    specs: Annotated[list[Path], typer.Argument(metavar="SPEC...", help="TaskSpec files (YAML/JSON) to compare on.")],
    configs: Annotated[list[Path] | None, typer.Option(
        "--config", help="A contestant: run config file, optional `name:` and `spec:` overrides (repeat).")] = None,
    renderers: Annotated[list[str] | None, typer.Option(
        "--renderer", help="A contestant: the default config with this renderer (repeat).")] = None,
    n: Annotated[int, typer.Option("--n", help="Images per spec and contestant (same seeds).")] = 3,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for every spec (default: the spec's).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Keep runs and arena.json here (new or empty "
                                                           "directory); default: a temporary directory.")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap rounds for the BT intervals.")] = 200,
    vlm_url: Annotated[str | None, typer.Option("--vlm-url", envvar="SYNTHLOOP_VLM_BASE_URL",
                                                help="OpenAI-compatible vision endpoint for the pairwise judge "
                                                     "(key in SYNTHLOOP_VLM_API_KEY).")] = None,
    vlm_model: Annotated[str, typer.Option("--vlm-model", envvar="SYNTHLOOP_VLM_MODEL",
                                           help="Model name at the VLM endpoint.")] = "gpt-4o-mini",
    vlm_samples: Annotated[int, typer.Option("--vlm-samples", help="VLM votes per presentation order.")] = 1,
) -> None:
    """Compare renderers or run configs on the same specs; print a Bradley–Terry / Elo leaderboard."""
    import tempfile

    from synthloop.evals.arena import (
        format_leaderboard,
        load_contestant,
        renderer_contestant,
        run_arena,
        vlm_pairwise_judge,
    )
    from synthloop.tools.llm.client import LLMUnavailableError

    _check_count("--n", n, 1, 1000)
    _check_count("--seed", seed, 0, 2**32 - 1)
    _check_count("--bootstrap", bootstrap, 0, 100_000)
    _check_count("--vlm-samples", vlm_samples, 1, 20)
    contestants = [load_contestant(path) for path in configs or []]
    contestants += [renderer_contestant(name) for name in renderers or []]
    _check_new_dir("--out", out)
    judge = vlm_pairwise_judge(vlm_url, vlm_model, samples=vlm_samples) if vlm_url else None

    def play(work_dir: Path) -> None:
        try:
            result = run_arena(specs, contestants, work_dir, judge=judge, n_images=n, seed=seed,
                               n_bootstrap=bootstrap, on_event=lambda message: typer.echo(message, err=True))
        except LLMUnavailableError as exc:
            raise CliError(str(exc)) from exc
        typer.echo(format_leaderboard(result))

    if out is not None:
        play(out)
    else:
        with tempfile.TemporaryDirectory(prefix="synthloop-arena-") as tmp:
            play(Path(tmp))


@app.command()
def critique(
    coco_json: Annotated[Path, typer.Argument(metavar="COCO_JSON", help="A COCO instances file.")],
    images: Annotated[Path, typer.Option("--images", help="Folder the COCO file_name paths are relative to.")],
    out: Annotated[Path, typer.Option("--out", help="JSONL to write: one line per image.")],
    no_pixels: Annotated[bool, typer.Option("--no-pixel-checks", help="Skip image-quality and boundary "
                                                                      "evidence judges.")] = False,
    force: OverwriteOption = False,
    detector: Annotated[str | None, typer.Option(
        "--detector", help="Add the recognisability judge (relabelled and missing boxes of COCO classes): "
                           "'default' (YOLOv3-tiny from scripts/setup.sh) or a Darknet model folder.")] = None,
    zoom: ZoomOption = True,
    consistency: ConsistencyOption = True,
) -> None:
    """Audit any COCO dataset with the embedded judges; one verdict line per image."""
    from collections import Counter

    from synthloop.tools.critic.audit import AuditError, audit_coco, write_audit

    _check_new_file("--out", out, force)
    progress = _Progress()
    progress.progress.columns = progress.progress.columns[:3] + progress.progress.columns[4:]

    def tick(done: int, total: int) -> None:
        if progress.task_id is None:
            progress.progress.start()
            progress.task_id = progress.progress.add_task("auditing", total=total, rejected=0)
        progress.progress.update(progress.task_id, completed=done)

    try:
        rows = audit_coco(coco_json, images, progress=tick, pixel_checks=not no_pixels,
                          recognisability=detector is not None, detector=_detector_option(detector), zoom=zoom,
                          consistency=consistency)
    except AuditError as exc:
        raise CliError(str(exc)) from exc
    finally:
        progress.stop()
    try:
        write_audit(rows, out, force=force)
    except AuditError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from exc
    counts = Counter(row["decision"] for row in rows)
    typer.echo(f"{out}: {len(rows)} images, " + ", ".join(f"{counts.get(d, 0)} {d}" for d in ("accept", "edit",
                                                                                           "reject")))


eval_app = typer.Typer(help="Measure the planner, the critic and the data.", no_args_is_help=True,
                       rich_markup_mode=None)
app.add_typer(eval_app, name="eval")


@eval_app.command("planner")
def eval_planner(
    cases: Annotated[list[Path] | None, typer.Option(
        "--cases", help="Case JSONL file(s) (default: evals/planner/cases.jsonl and heldout.jsonl).")] = None,
    config: ConfigOption = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Plan with the deterministic rules alone.")] = False,
    llm_always: Annotated[bool, typer.Option("--llm-always", help="Ask the LLM for every request (default: "
                                                                  "only when the rules are unsure).")] = False,
    failures: Annotated[bool, typer.Option("--failures", help="List the requests that were not fully right.")] = False,
) -> None:
    """Planner accuracy per field, fully-right rate, question rates and median planning time."""
    from synthloop.agent.planner import plan_request, revise_spec
    from synthloop.evals.planner_eval import DEFAULT_CASE_FILES, format_report, load_cases, run_cases

    files = cases or list(DEFAULT_CASE_FILES)
    try:
        loaded = [(path, load_cases(path)) for path in files]
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read planner cases: {exc}") from exc
    cfg = _load_config(config)
    client = None
    model = "none (rules only)"
    if not no_llm:
        from synthloop.tools.llm.local_server import client_from_config

        client = client_from_config(cfg.llm)  # started before timing: planning time excludes server start
        model = client.model
    mode = "always" if llm_always else "auto"
    typer.echo(f"model: {model}  llm: {'off' if no_llm else mode}")
    for path, rows in loaded:
        report = run_cases(path.name, rows, lambda request: plan_request(request, client, llm=mode),
                           lambda spec, message: revise_spec(spec, message, client))
        typer.echo(format_report(report, show_failures=failures))


@eval_app.command("critic")
def eval_critic(
    labels: Annotated[Path, typer.Argument(metavar="LABELS", help="Human labels JSONL (pointwise and/or pairwise).")],
    critique_file: Annotated[Path | None, typer.Option("--critique", help="`synthloop critique` output JSONL.")] = None,
    coco: Annotated[Path | None, typer.Option("--coco", help="Or: judge this COCO file now (with --images).")] = None,
    images: Annotated[Path | None, typer.Option("--images", help="Image folder of --coco.")] = None,
    score: Annotated[str | None, typer.Option(
        "--score", help="Score key of the critique rows used for rankings (default: accept 1 / edit ½ / reject 0)."
    )] = None,
    ratings: Annotated[Path | None, typer.Option("--ratings", help="Ratings JSON {\"scores\": {id: rating}}.")] = None,
    matches: Annotated[Path | None, typer.Option("--matches", help="The judge's pairwise votes (Match JSONL).")] = None,
    bootstrap_rounds: Annotated[int, typer.Option("--bootstrap", help="Bootstrap rounds.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Write the report as JSON here.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Score histogram PNG (default: next to --out).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out and --plot if they exist.")] = False,
) -> None:
    """Agreement of a judge with human labels: accuracy, κ, reject precision/recall, τ, pairwise agreement."""
    import tempfile

    from synthloop.evals.critic_agreement import LabelError, format_report, run_agreement
    from synthloop.tools.critic.audit import AuditError, audit_coco, write_audit

    _check_count("--bootstrap", bootstrap_rounds, 1, 100_000)
    if (critique_file is None) == (coco is None):
        raise CliError("give either --critique FILE or --coco FILE --images DIR")
    if plot is None and out is not None:
        plot = out.with_suffix(".png")
    _check_new_file("--out", out, force)
    _check_new_file("--plot", plot, force)
    with tempfile.TemporaryDirectory(prefix="synthloop-eval-") as tmp:
        if coco is not None:
            if images is None:
                raise CliError("--coco needs --images DIR")
            try:
                critique_file = Path(tmp) / "critique.jsonl"
                write_audit(audit_coco(coco, images), critique_file)
            except AuditError as exc:
                raise CliError(str(exc)) from exc
        try:
            report = run_agreement(labels, critique_file, score_key=score, ratings=ratings, matches=matches,
                                   rounds=bootstrap_rounds, seed=seed, plot=plot)
        except LabelError as exc:
            raise CliError(str(exc)) from exc
    typer.echo(format_report(report))
    _write_report_json(out, report.to_dict())


@eval_app.command("critic-defects")
def eval_critic_defects(
    n: Annotated[int, typer.Option("--n", help="Clean samples (each defect is injected into each).")] = 200,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels.")] = 512,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the samples and the injections.")] = 0,
    out: JsonReportOption = None,
    force: OverwriteOption = False,
    renderer: Annotated[str, typer.Option("--renderer", help="compositor (kitchen shapes) | copy_paste (real "
                                                             "cut-outs of eight COCO classes).")] = "compositor",
    detector: Annotated[str | None, typer.Option(
        "--detector", help="Add the recognisability judge: 'default' (YOLOv3-tiny from scripts/setup.sh) or a "
                           "Darknet model folder.")] = None,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="Choose the recognisability judge's thresholds on "
                                                                "copy_paste samples (and check them on a fresh "
                                                                "seed).")] = False,
    max_false_reject: Annotated[float, typer.Option("--max-false-reject", help="Clean false-reject budget of the "
                                                                               "calibration.")] = 0.03,
    critique_check: Annotated[Path | None, typer.Option(
        "--critique-check", help="Also write a boxes-only COCO of copy_paste renders with injected missing and "
                                 "relabelled boxes into this new folder and audit it as `synthloop critique "
                                 "--detector` does.")] = None,
    share: Annotated[float, typer.Option("--share", help="Share of injected images in --critique-check.")] = 0.2,
    classes: Annotated[str | None, typer.Option("--classes", help="COCO classes of --critique-check (comma-"
                                                                  "separated; default the benchmark's eight).")] = None,
    zoom: ZoomOption = True,
    consistency: ConsistencyOption = True,
) -> None:
    """Defect benchmark: per-defect catch rate and clean false rejects of every embedded judge."""
    from synthloop.evals.critic_defects import (
        COCO_BENCH_CLASSES,
        calibrate_recognisability,
        format_calibration,
        format_critique_check,
        format_defect_bench,
        run_critique_check,
        run_defect_bench,
    )
    from synthloop.tools.critic.detector import DetectorError
    from synthloop.tools.critic.recognisability import RecognisabilityJudge

    _check_scene_bench(n, size, seed)
    if renderer not in ("compositor", "copy_paste"):
        raise CliError(f"--renderer must be compositor or copy_paste, not {renderer!r}")
    if not 0.0 <= max_false_reject <= 1.0 or not 0.0 < share <= 1.0:
        raise CliError("--max-false-reject must be in [0, 1] and --share in (0, 1]")
    _check_new_file("--out", out, force)
    _check_new_dir("--critique-check", critique_check)
    block = _detector_option(detector) if detector is not None or calibrate or critique_check else None
    try:
        judge = RecognisabilityJudge(block, zoom=zoom) if detector is not None or calibrate else None
    except DetectorError as exc:
        raise CliError(f"--detector: {exc}") from exc
    result: dict[str, Any] = {}
    if calibrate:
        calibration = calibrate_recognisability(judge, n=n, size=size, seed=seed, max_false_reject=max_false_reject)
        typer.echo(format_calibration(calibration))
        judge = RecognisabilityJudge(judge.detector, relabel_margin=calibration.relabel_margin,
                                     missing_score=calibration.missing_score, zoom=zoom)
        result["calibration"] = vars(calibration)
    bench = run_defect_bench(n=n, size=size, seed=seed + 2 if calibrate else seed, renderer=renderer,
                             recognisability=judge)
    typer.echo(format_defect_bench(bench))
    result["bench"] = bench.to_dict()
    if critique_check is not None:
        try:
            chosen = tuple(c.strip() for c in classes.split(",") if c.strip()) if classes else COCO_BENCH_CLASSES
            check = run_critique_check(critique_check, n=n, size=size, seed=seed + 3, share=share, detector=block,
                                       classes=chosen, zoom=zoom, consistency=consistency)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        typer.echo(format_critique_check(check))
        result["critique_check"] = vars(check)
    _write_report_json(out, result if len(result) > 1 else bench.to_dict())


def _detector_option(value: str | None) -> Any:
    """`--detector default|DIR` as a detector block (None: the default YOLOv3-tiny)."""
    if value is None or value == "default":
        return None
    if not Path(value).is_dir():
        raise CliError(f"--detector {value}: not a Darknet model folder (cfg, weights, names), nor 'default'")
    return {"backend": "yolov3_darknet", "model": value, "score_threshold": 0.02}


@eval_app.command("labels")
def eval_labels(
    n: Annotated[int, typer.Option("--n", help="Rendered hard scenes to label and measure.")] = 200,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels.")] = 512,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the scenes and the labels.")] = 0,
    noise: Annotated[int, typer.Option("--noise", help="Shift each mask by up to this many pixels before "
                                                       "labelling (a model annotator's error); 0 = exact.")] = 0,
    renderer: Annotated[str, typer.Option("--renderer", help="A renderer with exact masks: compositor, "
                                                             "copy_paste.")] = "compositor",
    out: JsonReportOption = None,
    force: OverwriteOption = False,
) -> None:
    """Captions, referring expressions and relations measured against the exact truth of rendered scenes."""
    from synthloop.evals.labels import format_labels_report, run_labels_eval

    _check_scene_bench(n, size, seed)
    _check_count("--noise", noise, 0, 64)
    _check_new_file("--out", out, force)
    try:
        report = run_labels_eval(n=n, size=size, seed=seed, noise_px=noise, renderer=renderer)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    typer.echo(format_labels_report(report))
    _write_report_json(out, report.to_dict())


@eval_app.command("realism")
def eval_realism(
    dataset: Annotated[Path, typer.Argument(metavar="DIR", help="An exported dataset (synthloop's output folder).")],
    detector: Annotated[Path | None, typer.Option(
        "--detector", help="Darknet model folder (cfg, weights, names); default: YOLOv3-tiny installed by "
                           "scripts/setup.sh.")] = None,
    min_score: Annotated[float, typer.Option("--min-score", help="Detections below this confidence are ignored.")
                         ] = 0.25,
    bootstrap_rounds: Annotated[int, typer.Option("--bootstrap", help="Bootstrap rounds over images.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
) -> None:
    """Recall of a real COCO-trained detector on the dataset's objects, per class; writes DIR/realism.json."""
    from synthloop.evals.realism import (
        RealismError,
        evaluate_realism,
        format_realism,
        load_realism_detector,
        write_realism,
    )
    from synthloop.tools.export.card import refresh_realism_section

    _check_count("--bootstrap", bootstrap_rounds, 0, 100_000)
    _check_count("--seed", seed, 0, 2**32 - 1)
    if not 0.0 <= min_score <= 1.0:
        raise CliError(f"--min-score must be between 0 and 1, got {min_score}")
    if not dataset.is_dir():
        raise CliError(f"{dataset} is not a directory")
    try:
        report = evaluate_realism(dataset, load_realism_detector(detector), min_score=min_score,
                                  rounds=bootstrap_rounds, seed=seed)
    except RealismError as exc:
        raise CliError(str(exc)) from exc
    typer.echo(format_realism(report))
    written = write_realism(dataset, report)
    card = refresh_realism_section(dataset)
    typer.echo(f"wrote {written}" + (f"; realism section in {card}" if card else ""))



@eval_app.command("utility")
def eval_utility(
    out: Annotated[Path, typer.Option("--out", help="New or empty folder: utility.json / .md / .png and the runs.")],
    classes: Annotated[str, typer.Option("--classes", help="Comma-separated classes (each needs two or more library "
                                                           "cut-outs: one side trains, the other is held out).")
                       ] = "bird,car,apple,dog",
    n_train: Annotated[int, typer.Option("--n-train", help="Training images per arm.")] = 160,
    n_test: Annotated[int, typer.Option("--n-test", help="Held-out test images (without --test-coco).")] = 100,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels.")] = 128,
    seeds: Annotated[int, typer.Option("--seeds", help="Training seeds per arm (0, 1, …).")] = 3,
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 10,
    data_seed: Annotated[int, typer.Option("--data-seed", help="Seed of the data, the split and the bootstrap.")] = 0,
    bad_share: Annotated[float, typer.Option("--bad-share", help="Share of badly annotated training images.")] = 0.2,
    best_of: Annotated[int, typer.Option("--best-of", help="Renders per layout of the best-of-n arm.")] = 3,
    model: Annotated[str, typer.Option("--model", help="tiny_fcos | a torchvision detection builder name.")
                     ] = "tiny_fcos",
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="Local state dict to start from.")] = None,
    threads: Annotated[int, typer.Option("--threads", help="torch threads per training (1 is fastest on a busy "
                                                           "machine).")] = 1,
    jobs: Annotated[int, typer.Option("--jobs", help="Trainings run at once, in worker processes.")] = 1,
    bootstrap_rounds: Annotated[int, typer.Option("--bootstrap", help="Bootstrap rounds.")] = 300,
    comparisons: Annotated[str | None, typer.Option(
        "--comparisons", help="Comma-separated subset of: synthetic_vs_none, copy_paste_vs_shapes, "
                              "filtered_vs_unfiltered, anchored_vs_procedural, best_of_n_vs_single.")] = None,
    train_coco: Annotated[Path | None, typer.Option("--train-coco", help="Your real training COCO file.")] = None,
    train_images: Annotated[Path | None, typer.Option("--train-images", help="Its image folder.")] = None,
    test_coco: Annotated[Path | None, typer.Option("--test-coco", help="Your real test COCO file.")] = None,
    test_images: Annotated[Path | None, typer.Option("--test-images", help="Its image folder.")] = None,
    card: Annotated[Path | None, typer.Option("--card", help="An exported dataset whose card.md gets the section "
                                                             "(default: the copy_paste arm's).")] = None,
    assets: Annotated[Path | None, typer.Option("--assets", help="Split your own cut-outs (one folder per class) "
                                                                 "instead of the installed library.")] = None,
) -> None:
    """Train a small detector on each way of making the data and compare them on held-out real objects."""
    from synthloop.evals.utility.assets import UtilityError
    from synthloop.evals.utility.detector import TrainSettings
    from synthloop.evals.utility.report import format_report, refresh_card_section, write_report
    from synthloop.evals.utility.run import COMPARISONS, UtilitySettings, run_utility

    for name, value, low, high in (("--n-train", n_train, 4, 100_000), ("--n-test", n_test, 4, 100_000),
                                   ("--size", size, 64, 1024), ("--seeds", seeds, 1, 100),
                                   ("--epochs", epochs, 1, 1000), ("--data-seed", data_seed, 0, 2**31 - 1),
                                   ("--best-of", best_of, 2, 8), ("--threads", threads, 1, 256),
                                   ("--jobs", jobs, 1, 64), ("--bootstrap", bootstrap_rounds, 1, 100_000)):
        _check_count(name, value, low, high)
    if not 0.0 <= bad_share < 1.0:
        raise CliError(f"--bad-share must be in [0, 1), got {bad_share}")
    _check_new_dir("--out", out)
    if card is not None and not (card / "card.md").is_file():
        raise CliError(f"--card {card}: no card.md there (give an exported dataset folder)")
    chosen = tuple(c.strip() for c in comparisons.split(",") if c.strip()) if comparisons else tuple(COMPARISONS)
    settings = UtilitySettings(
        classes=tuple(c.strip() for c in classes.split(",") if c.strip()), n_train=n_train, n_test=n_test,
        size=size, seeds=tuple(range(seeds)), data_seed=data_seed,
        train=TrainSettings(epochs=epochs, threads=threads), bad_share=bad_share, best_of_n=best_of, model=model,
        checkpoint=checkpoint, rounds=bootstrap_rounds, comparisons=chosen, train_coco=train_coco,
        train_images=train_images, test_coco=test_coco, test_images=test_images, assets_dir=assets, jobs=jobs)
    try:
        settings.check()
        report = run_utility(settings, out, on_event=lambda message: typer.echo(message, err=True))
    except UtilityError as exc:
        raise CliError(str(exc)) from exc
    typer.echo(format_report(report))
    paths = write_report(report, out)
    target = card if card is not None else out / "runs" / "copy_paste"
    written = refresh_card_section(target, report, paths["plot"])
    typer.echo(f"wrote {paths['markdown']}, {paths['json']}, {paths['plot']}"
               + (f"; utility section in {written}" if written else ""))

def main() -> None:
    """Entry point: run the app, turning user mistakes into one line on stderr and exit code 2."""
    from synthloop.agent.errors import UserInputError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        # Without standalone mode click returns the exit code of typer.Exit instead of raising it.
        code = app(standalone_mode=False)
    except (CliError, UserInputError) as exc:
        typer.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except Terminated:
        typer.echo("terminated: `synthloop resume DIR` continues an unfinished run", err=True)
        sys.exit(EXIT_TERMINATED)
    except UnicodeDecodeError as exc:  # stdin (chat answers) that is not UTF-8
        typer.echo(f"error: the input is not valid UTF-8 text ({exc.reason} at byte {exc.start})", err=True)
        sys.exit(EXIT_USER_ERROR)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # typer's (vendored click) usage errors: bad or missing options
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"error: {message}", err=True)
        sys.exit(getattr(exc, "exit_code", EXIT_USER_ERROR))
    except Exception as exc:
        if not _is_llm_error(exc):
            raise
        typer.echo(f"error: {_one_line(exc)}", err=True)  # endpoint down, key rejected, malformed answers
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        typer.echo("interrupted: `synthloop resume DIR` continues the run", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
