"""Default `Deps` for a graph invoked without a runtime context (LangGraph's dev server / Studio / Platform).

The CLI and the web UI always pass their own `Deps`. Elsewhere the nodes fall back to these:
- the run config from the file in SYNTHLOOP_CONFIG (else the embedded defaults);
- the planner and the conversational reviser every front-end builds (`synthloop.agent.planner.factories`);
- the output folder `$SYNTHLOOP_LANGGRAPH_OUT/<thread id>` (default `./runs/langgraph-<thread id>`), one per
  LangGraph thread; the checkpoints stay with the server's own checkpointer.
Deps are built once per output folder and kept for the life of the process (renders in flight, the duplicate
index), so every node of a thread sees the same ones.
"""

from __future__ import annotations

import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from synthloop.agent.deps import Deps

OUT_ENV = "SYNTHLOOP_LANGGRAPH_OUT"
CONFIG_ENV = "SYNTHLOOP_CONFIG"

_lock = threading.Lock()
_cache: dict[Path, Deps] = {}
_executor: ThreadPoolExecutor | None = None


def default_out_dir(thread_id: str | None) -> Path:
    """Where a thread's dataset goes when no output folder was given."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", thread_id or "default").strip("-")[:80] or "default"
    base = os.environ.get(OUT_ENV)
    return Path(base) / safe if base else Path("runs") / f"langgraph-{safe}"


def _thread_id() -> str | None:
    try:
        from langgraph.config import get_config

        return str(get_config().get("configurable", {}).get("thread_id") or "") or None
    except RuntimeError:  # called outside a graph run
        return None


def default_deps(out_dir: Path | None = None) -> Deps:
    """The (cached) default Deps for `out_dir`, or for the current LangGraph thread's default folder."""
    global _executor
    from synthloop.agent.config import load_config
    from synthloop.agent.planner.factories import make_planner, make_reviser
    from synthloop.agent.runner import build_deps
    from synthloop.agent.store import restore_from_checkpoint

    out_dir = Path(out_dir or default_out_dir(_thread_id())).resolve()
    with _lock:
        if out_dir not in _cache:
            config = load_config(os.environ.get(CONFIG_ENV) or None)
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="synthloop-default")
            (out_dir / ".work").mkdir(parents=True, exist_ok=True)
            planner = make_planner(config, None, None)
            deps = build_deps(out_dir, config, planner, auto_approve=False, progress=None,
                              executor=_executor, reviser=make_reviser(config, planner))
            restore_from_checkpoint(deps, [])  # the server owns the checkpoints: judges learn every kept record
            _cache[out_dir] = deps
        return _cache[out_dir]
