"""What one sweep trial does with one run directory, on whichever machine Ray runs it: train it,
resume it from its newest softac checkpoint, or nothing if it already finished. No Ray here.

Test hook (used by tests/test_sweep.py only): when the environment variable
``SOFTAC_SWEEP_TEST_KILL`` names a JSON file ``{"after_step": N}`` that exists as a run starts, a
watcher thread waits until the run's progress.csv has an evaluation at step >= N, claims the file
by renaming it to ``<file>.claimed`` (so exactly one run of the whole sweep does this), writes the
run directory into it, and SIGKILLs its own process: a worker dying mid-run, as a node failure or
the OOM killer would, without any cleanup. Without the variable nothing of this runs.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import softac.algos  # noqa: F401  (registers every algorithm)
from softac import registry
from softac.analysis.stats import final_returns, read_curve
from softac.envs import module_of
from softac.errors import DivergenceError, SoftacError
from softac.io.rundir import list_checkpoints
from softac.logging import SUCCESS_FIELDS
from softac.preset_apply import resolve as resolve_preset

KILL_ENV = "SOFTAC_SWEEP_TEST_KILL"
# The files a run writes into its directory; a run that died before its first checkpoint has
# only these, and they are removed before it starts again from step 0.
PARTIAL = ("config.json", "progress.csv", "learning_curve.png", "tb", "checkpoints")


def checkpoint_step(run_dir: Path) -> int | None:
    """env_steps of the newest complete checkpoint of ``run_dir``, or None without one."""
    found = list_checkpoints(Path(run_dir))
    if not found:
        return None
    try:
        state = json.loads((found[-1] / "state.json").read_text())
        return int(state["counters"]["env_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        raise SoftacError(f"checkpoint {found[-1]} has an unreadable state.json") from None


def run_state(run_dir: Path, total_steps: int) -> tuple[str, int]:
    """("finished" | "resume" | "fresh", the step it continues from)."""
    step = checkpoint_step(run_dir)
    if step is None:
        return "fresh", 0
    return ("finished" if step >= total_steps else "resume"), step


def _clear_partial(run_dir: Path) -> None:
    for name in PARTIAL:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _kill_watch(run_dir: Path, stop: threading.Event) -> None:
    """The test hook of the module docstring (``stop``: the run ended; Ray may reuse the process)."""
    control = Path(os.environ.get(KILL_ENV, ""))
    if not os.environ.get(KILL_ENV) or not control.is_file():
        return
    try:
        after = int(json.loads(control.read_text())["after_step"])
    except (OSError, ValueError, KeyError):
        return  # claimed by another run meanwhile

    def watch() -> None:
        progress = run_dir / "progress.csv"
        while not stop.wait(0.005):
            try:
                lines = progress.read_text().splitlines()[1:]
                steps = [int(line.split(",")[0]) for line in lines if line.count(",") > 3]
            except (OSError, ValueError):
                continue
            if steps and max(steps) >= after:
                break
        else:
            return
        claimed = control.with_name(control.name + ".claimed")
        try:
            control.rename(claimed)
        except OSError:
            return  # another run of the sweep was killed already
        claimed.write_text(json.dumps({"run_dir": str(run_dir), "killed_after": max(steps)}))
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name="softac-test-kill").start()


def metric_problem(run_dir: Path, metric: str) -> str | None:
    """Why ``run_dir``'s progress.csv cannot give ``metric`` (None: its header has the column). A
    success rate is logged only where the environment reports success (softac.success), so a sweep
    on ``eval_success_rate`` over an environment that reports none has no number to optimise."""
    progress = Path(run_dir) / "progress.csv"
    try:
        with progress.open(newline="") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return f"cannot read {progress}: {exc}"
    if metric in header:
        return None
    why = ("its environment reports no success (neither info['is_success'] nor info['success'])"
           if metric in SUCCESS_FIELDS else "this algorithm does not log it")  # fmt: skip
    return f"{progress} has no {metric} column: {why}; choose another --metric, e.g. eval_return_mean"


def run_one(
    algo: str, values: dict[str, Any], run_dir: Path, metric: str = "eval_return_mean", preset: str = "none"
) -> dict[str, Any]:
    """Bring the run in ``run_dir`` to its ``total_steps``: continue it from its newest checkpoint
    (exact when checkpoints fall on episode boundaries), start it again from step 0 if it died
    before its first checkpoint, or do nothing if it finished. ``values`` are the config fields
    the sweep gives (``env_id`` and ``seed`` included); with ``preset="auto"`` the run starts from
    the preset of (algo, env) under them, applied by the agent so that its ``config.json`` records
    the preset as a `softac train` run's does. Returns the run's final ``metric``, where it started
    (``resumed_from``) and its minutes in this call.

    A divergence or a bad setting is returned as ``error`` (not raised): a retry would only
    repeat it, and the sweep goes on with its other trials."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    resolved, _ = resolve_preset(algo, values["env_id"], preset, values)
    total = int(resolved.get("total_steps", registry.get(algo).config_cls().total_steps))
    state, step = run_state(run_dir, total)
    error = None
    stop = threading.Event()
    try:
        if state == "resume":
            # The sweep's own id (the user typed it, or allowed it on --resume): a module:EnvId may import.
            module = module_of(values["env_id"])
            agent = registry.get(algo).agent_cls.load(run_dir, allow_import=[module] if module else [])
            if agent.config.env_id != values["env_id"] or agent.config.seed != values["seed"]:
                raise SoftacError(f"{run_dir} holds another run ({agent.config.env_id}, seed {agent.config.seed})")
            _kill_watch(run_dir, stop)
            agent.learn(total_steps=total, run_dir=run_dir, progress=False)
        elif state == "fresh":
            run_dir.mkdir(parents=True, exist_ok=True)
            _clear_partial(run_dir)
            fields = dict(values)
            agent = registry.get(algo).agent_cls(fields.pop("env_id"), preset=preset, **fields)
            _kill_watch(run_dir, stop)
            agent.learn(run_dir=run_dir, progress=False)
    except (SoftacError, DivergenceError) as exc:
        error = str(exc)
    finally:
        stop.set()
    final = float("nan")
    problem = metric_problem(run_dir, metric) if (run_dir / "progress.csv").is_file() else None
    if problem is not None:
        error = error or problem
    elif (run_dir / "progress.csv").is_file():
        curve = read_curve(run_dir, metric)
        if len(curve.steps):
            final = float(final_returns([curve])[0])
    return {
        "final": final, "state": state, "resumed_from": step, "error": error,
        "minutes": (time.perf_counter() - t0) / 60,
    }  # fmt: skip
