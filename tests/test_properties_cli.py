"""Property test (hypothesis) of the command line: any argument list ends with exit code 0, 1 or 2 (and at most
one `error:` line), never with a traceback.

Arguments are drawn from the real commands and options (read from the Typer app) mixed with hostile values:
numbers out of range, junk text, paths that exist or not, lone dashes. Each command's own checks run for real
(counts, paths, configs, the rule planner on the junk request); only the work behind a command that passed
them is replaced by a stub that exits 0 (a run, the UI server, an eval), so an example takes milliseconds.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from synthloop.agent import cli


def _commands() -> dict[tuple[str, ...], list[str]]:
    """Command path → its option names, from the app itself."""
    found: dict[tuple[str, ...], list[str]] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):  # a group (typer vendors its own click: no isinstance check)
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found[path] = [opt for param in command.params for opt in param.opts if opt.startswith("-")]

    walk(typer.main.get_command(cli.app), ())
    return found


COMMANDS = _commands()
assert len(COMMANDS) > 10 and ("eval", "critic") in COMMANDS
ALL_OPTIONS = sorted({opt for options in COMMANDS.values() for opt in options} | {"--help", "--bogus", "-x"})


def _stop(*args: object, **kwargs: object) -> Any:
    raise typer.Exit(0)


# The work behind each command: (module, attribute) replaced by a stub once the command's checks passed.
WORK = [("synthloop.agent.runner", "start_run"), ("synthloop.agent.runner", "resume_run"),
        ("synthloop.agent.web.server", "serve"), ("synthloop.evals.throughput", "run_bench"),
        ("synthloop.evals.diffusion_bench", "run_diffusion_bench"), ("synthloop.evals.arena", "run_arena"),
        ("synthloop.tools.critic.audit", "audit_coco"), ("synthloop.tools.critic.audit", "write_audit"),
        ("synthloop.evals.planner_eval", "run_cases"), ("synthloop.tools.llm.local_server", "client_from_config"),
        ("synthloop.evals.critic_agreement", "run_agreement"), ("synthloop.evals.critic_defects", "run_defect_bench"),
        ("synthloop.evals.labels", "run_labels_eval"), ("synthloop.evals.realism", "load_realism_detector"),
        ("synthloop.agent.backends", "all_registries")]


@pytest.fixture
def stubbed_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI with its heavy work stubbed, run from an empty folder (what it creates stays there)."""
    from synthloop.agent.chat import Chat
    from synthloop.agent.planner import plan_request

    for module_name, attribute in WORK:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # an optional extra that is not installed: that command fails its own way
        monkeypatch.setattr(module, attribute, _stop)
    monkeypatch.setattr(Chat, "run", lambda self, request=None: None)
    monkeypatch.setattr(cli, "make_planner", lambda config, n, seed: lambda request: plan_request(
        request, None, n_images=n, seed=seed))  # the rules alone: no LLM is started
    for name in [k for k in list(__import__("os").environ) if k.startswith("SYNTHLOOP_")]:
        monkeypatch.delenv(name)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "afile.txt").write_text("not a spec")
    monkeypatch.chdir(tmp_path / "work")
    previous = signal.getsignal(signal.SIGTERM)
    yield tmp_path / "work"
    signal.signal(signal.SIGTERM, previous)


values = st.one_of(
    st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True).map(str),
    st.sampled_from(["", "-", "--", ".", "..", "afile.txt", "missing.yaml", "/", "0", "-1", "1e9", "nan", "true",
                     "ray", "local", "coco", "127.0.0.1", "::1", "0.0.0.0", "http://127.0.0.1:9/v1", "a b c"]),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30),
)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    path = draw(st.sampled_from(sorted(COMMANDS)))
    own = COMMANDS[path]
    token = st.one_of(st.sampled_from(own) if own else values, st.sampled_from(ALL_OPTIONS), values)
    return [*path, *draw(st.lists(token, max_size=8))]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command_lines())
def test_any_command_line_exits_0_1_or_2_without_a_traceback(stubbed_cli: Path, argv: list[str]) -> None:
    stderr, stdout = io.StringIO(), io.StringIO()
    sys.argv = ["synthloop", *argv]
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout), pytest.raises(SystemExit) as done:
        cli.main()
    code = done.value.code
    event(f"{' '.join(argv[:2] if argv[0] == 'eval' else argv[:1])}: exit {code}")
    assert code in (0, 1, 2, None), (argv, code, stderr.getvalue())
    errors = [line for line in stderr.getvalue().splitlines() if line.startswith("error: ")]
    assert len(errors) <= 1 and "Traceback" not in stderr.getvalue(), (argv, stderr.getvalue())
    if code == 2:
        assert len(errors) == 1, (argv, stderr.getvalue())
