"""Run output: progress.csv (one row per evaluation), TensorBoard scalars, the progress bar.

Every write of a run's output turns an ``OSError`` (disk full, read-only, quota) into one
:class:`WriteError` line naming the file, with no temporary file left behind; the trainer adds
the last good checkpoint, which a failed log write never touches."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from tqdm import tqdm

from softac.errors import WriteError

# progress.csv's columns: the ones every run has, then its family's (a SAC run carried
# five PPO columns that were always empty). ``step`` and ``eval_return_mean`` are always present.
COMMON_FIELDS = [
    "step", "wall_time_s", "updates", "episodes", "eval_return_mean", "eval_return_std",
    "train_return_mean", "steps_per_s",
]  # fmt: skip
FAMILY_FIELDS = {
    "off-policy": ["loss_critic", "loss_actor", "alpha", "entropy", "q_mean"],
    "on-policy": ["loss_policy", "loss_value", "entropy", "approx_kl", "clip_fraction", "explained_variance"],
}
# Every column some run may have (what `softac sweep --metric` may name).
CSV_FIELDS = COMMON_FIELDS + list(dict.fromkeys(c for cols in FAMILY_FIELDS.values() for c in cols))
# The success-rate columns of a run whose environment reports success (``softac.success``), each
# placed after the column it sits beside. A run on any other environment never has them: they are
# added, and the file rewritten with them, when the first evaluation row carries one.
SUCCESS_FIELDS = {"eval_success_rate": "eval_return_std", "train_success_rate": "train_return_mean"}


def with_success(fields: list[str]) -> list[str]:
    """``fields`` with the success-rate columns, each right after the column it sits beside."""
    out = [f for f in fields if f not in SUCCESS_FIELDS]
    for column, after in SUCCESS_FIELDS.items():
        out.insert(out.index(after) + 1 if after in out else len(out), column)
    return out


def csv_fields(family: str) -> list[str]:
    """The progress.csv columns of a run of this training family ("off-policy", "on-policy")."""
    return COMMON_FIELDS + FAMILY_FIELDS[family]


_METRIC_COLUMNS = {
    "loss/critic": "loss_critic", "loss/actor": "loss_actor", "alpha": "alpha",
    "policy/entropy": "entropy", "q/mean": "q_mean",
    "loss/policy": "loss_policy", "loss/value": "loss_value", "policy/approx_kl": "approx_kl",
    "policy/clip_fraction": "clip_fraction", "policy/explained_variance": "explained_variance",
}  # fmt: skip


def read_progress(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


class ProgressBar:
    """The one progress bar of a run (all learners advance together): steps, rate, ETA, and the
    latest episode and evaluation returns (of the first learner, or their mean)."""

    def __init__(self, total_steps: int, start_step: int, enabled: bool) -> None:
        self.bar = tqdm(
            total=total_steps, initial=start_step, unit="step", dynamic_ncols=True, disable=not enabled,
            smoothing=0.05, mininterval=0.5,
        )  # fmt: skip
        self.postfix: dict[str, str] = {}

    def advance(self, steps: int) -> None:
        # A run may end past its budget (PPO at the first rollout boundary at or past it): tqdm
        # drops the total once n exceeds it, so the total follows instead.
        if self.bar.total is not None and self.bar.n + steps > self.bar.total:
            self.bar.total = self.bar.n + steps
        self.bar.update(steps)

    def note(self, key: str, value: float, fmt: str = ".1f") -> None:
        self.postfix[key] = f"{value:{fmt}}"
        self.bar.set_postfix(self.postfix, refresh=False)

    def write(self, message: str) -> None:
        self.bar.write(message)

    def close(self) -> None:
        self.bar.close()


def _failed(path: Path, exc: OSError) -> WriteError:
    return WriteError(f"cannot write {path}: {exc.strerror or exc}")


class RunLogger:
    """Writes one learner's run directory: progress.csv (one row per evaluation) and TensorBoard.

    On resume (``start_step > 0``) rows of progress.csv after the checkpoint's step are dropped
    (they came from the part of the interrupted run that is being redone) and TensorBoard purges
    events after that step, so neither has duplicated nor missing points.
    """

    def __init__(self, run_dir: Path, start_step: int, fields: list[str] | None = None) -> None:
        self.run_dir = run_dir
        self.fields = list(fields if fields is not None else CSV_FIELDS)
        self.csv_path = run_dir / "progress.csv"
        self.tb_path = run_dir / "tb"
        self._prepare_csv(start_step)
        # Imported here, not at the top: TensorBoard's import costs ≈1 s, which `softac plot`,
        # `softac eval` and `softac compare` (which read this module's CSV helpers) never need.
        from torch.utils.tensorboard import SummaryWriter

        try:
            self.writer = SummaryWriter(str(self.tb_path), purge_step=start_step if start_step > 0 else None)
        except OSError as exc:
            raise _failed(self.tb_path, exc) from None
        self.last_scalars: dict[str, float] = {}

    def _tb(self, method: str, *args: Any) -> None:
        """A TensorBoard call; its writer thread reports a failed write on the next call."""
        try:
            getattr(self.writer, method)(*args)
        except OSError as exc:
            raise _failed(self.tb_path, exc) from None

    def _prepare_csv(self, start_step: int) -> None:
        rows: list[dict[str, str]] = []
        if start_step > 0 and self.csv_path.exists():
            rows = [r for r in read_progress(self.csv_path) if int(r["step"]) <= start_step]
            if rows and any(c in rows[0] for c in SUCCESS_FIELDS):  # a run that reports success keeps them
                self.fields = with_success(self.fields)
        self._write_csv(rows)

    def _write_csv(self, rows: list[dict[str, str]]) -> None:
        """progress.csv with this logger's header and ``rows``, replaced atomically."""
        tmp = self.csv_path.with_name(f".progress.csv.tmp-{os.getpid()}")
        try:
            with tmp.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(self.csv_path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _failed(self.csv_path, exc) from None

    def episode(self, step: int, ret: float, length: int) -> None:
        self._tb("add_scalar", "rollout/episode_return", ret, step)
        self._tb("add_scalar", "rollout/episode_length", length, step)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.last_scalars.update(values)
        for name, value in values.items():
            self._tb("add_scalar", name, value, step)

    def evaluation(self, step: int, row: dict[str, Any]) -> None:
        """Append one row to progress.csv (flushed at once: a killed run loses no written row)."""
        for key, column in _METRIC_COLUMNS.items():
            if key in self.last_scalars:
                row.setdefault(column, self.last_scalars[key])
        self._tb("add_scalar", "eval/return_mean", row["eval_return_mean"], step)
        self._tb("add_scalar", "eval/return_std", row["eval_return_std"], step)
        for column, tag in (("eval_success_rate", "eval/success_rate"), ("train_success_rate", "rollout/success_rate")):
            if isinstance(row.get(column), float) and math.isfinite(row[column]):
                self._tb("add_scalar", tag, row[column], step)
        self._tb("flush")
        if any(c in row for c in SUCCESS_FIELDS) and not all(c in self.fields for c in SUCCESS_FIELDS):
            # The first row that knows the environment reports success: the columns join the header.
            self.fields = with_success(self.fields)
            self._write_csv(read_progress(self.csv_path))
        clean = {k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v) for k, v in row.items()}
        try:
            with self.csv_path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore").writerow(clean)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise _failed(self.csv_path, exc) from None

    def close(self) -> None:
        # Why not raise here: close runs while another error (the one to report) may be unwinding.
        try:
            self.writer.flush()
            self.writer.close()
        except OSError:
            pass
