"""Run folders as :mod:`lesson7_studio.core.train.run` writes them: config, metrics rows,
checkpoints and the list of sample grids (see the package's docstring for the layout)."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import Lesson7Error

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..project import Project, RunInfo

SAMPLE_RE = re.compile(r"^(?P<stage>.+)_epoch(?P<epoch>\d+)\.png$")
CHECKPOINT_RE = re.compile(r"-s(?P<step>\d+)\.safetensors$")
CRITIC_RE = re.compile(r"-s(?P<step>\d+)\.critic\.safetensors$")
# metrics.csv columns that describe the row rather than measure the model
ROW_FIELDS = ("stage", "epoch", "step", "lr", "seconds")


class RunFolderError(Lesson7Error):
    """A file of a run folder exists but cannot be used as it is."""


# ---------------------------------------------------------------------------------- config
def read_config(run: str | Path) -> dict[str, Any]:
    """The run's config.json as a dict ({} when missing, unreadable or not an object)."""
    try:
        data = json.loads((Path(run) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stage_kinds(config: dict[str, Any]) -> dict[str, str]:
    """Stage name -> kind (restore, save-preds, critic, gan, wgan), in the run's order."""
    out: dict[str, str] = {}
    for s in config.get("stages", []) or []:
        if isinstance(s, dict) and "name" in s:
            out[str(s["name"])] = str(s.get("kind", "restore"))
    return out


def guess_kind(stage: str) -> str:
    """The kind of a stage that config.json does not list (an old or foreign run), from its name."""
    low = stage.lower()
    return "wgan" if "wgan" in low else ("gan" if "gan" in low else "restore")


def run_tag(config: dict[str, Any]) -> str:
    """"WGAN", "GAN" or "" for a run list: what kind of adversarial training the run has."""
    kinds = set(stage_kinds(config).values())
    return "WGAN" if "wgan" in kinds else ("GAN" if "gan" in kinds else "")


def describe_config(config: dict[str, Any]) -> str:
    """One line for a log: recipe, model, size, batch, loss and the stages with their epochs."""
    stages = ", ".join(f"{s.get('name')}\u00d7{s.get('epochs')}" for s in config.get("stages", []) or []
                       if isinstance(s, dict))
    return (f"recipe {config.get('recipe')}, model {config.get('arch')}, size {config.get('size')}, "
            f"batch {config.get('batch_size')}, loss {config.get('loss')}, stages {stages}")


def list_runs(project: Project) -> list[RunInfo]:
    """The project's runs, newest first ([] when its runs folder cannot be read)."""
    try:
        return project.list_runs()
    except OSError:
        return []


# ---------------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class MetricsRow:
    """One row of metrics.csv: where it was taken and the numbers measured there.

    ``values`` holds every measured column as a float (NaN where the file says "nan"); empty cells
    are left out. ``lr`` and ``seconds`` are kept apart from the measurements."""

    stage: str
    epoch: int | None
    step: float | None
    values: dict[str, float] = field(default_factory=dict)
    lr: float | None = None
    seconds: float | None = None

    def get(self, key: str) -> float | None:
        """A measurement that is present and finite, else None."""
        v = self.values.get(key)
        return v if v is not None and math.isfinite(v) else None


def _float(text: Any) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def parse_metrics_row(row: dict[str, Any]) -> MetricsRow:
    """A csv.DictReader row -> MetricsRow (cells that are not numbers are left out)."""
    epoch = _float(row.get("epoch"))
    values = {}
    for k, v in row.items():
        if k is None or k in ROW_FIELDS or v in (None, ""):
            continue
        f = _float(v)
        if f is not None:
            values[k] = f
    return MetricsRow(stage=str(row.get("stage") or ""),
                      epoch=int(epoch) if epoch is not None and math.isfinite(epoch) else None,
                      step=_float(row.get("step")), values=values,
                      lr=_float(row.get("lr")), seconds=_float(row.get("seconds")))


def read_metrics(source: str | Path) -> list[MetricsRow]:
    """metrics.csv of a run folder (or the csv file itself) as typed rows, in file order."""
    path = Path(source)
    if path.is_dir():
        path = path / "metrics.csv"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [parse_metrics_row(row) for row in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def metrics_by_epoch(rows: Iterable[MetricsRow]) -> dict[tuple[str, int], MetricsRow]:
    """Rows keyed by (stage, epoch); the last row wins (a resumed epoch is written again)."""
    return {(r.stage, r.epoch): r for r in rows if r.epoch is not None}


def last_metric(run: str | Path, key: str) -> float | None:
    """The newest finite value of column ``key`` in the run's metrics.csv, or None."""
    for row in reversed(read_metrics(run)):
        v = row.get(key)
        if v is not None:
            return v
    return None


# ---------------------------------------------------------------------------------- checkpoints
def _newest(folder: Path, pattern: str, regex: re.Pattern[str], *, skip_critic: bool) -> tuple[Path, int] | None:
    best: tuple[Path, int] | None = None
    if not folder.is_dir():
        return None
    for p in folder.glob(pattern):
        if p.name.startswith(".") or (skip_critic and p.name.endswith(".critic.safetensors")):
            continue
        m = regex.search(p.name)
        if m is None:
            continue
        step = int(m["step"])
        if best is None or step > best[1]:
            best = (p, step)
    return best


def newest_checkpoint(run: str | Path) -> tuple[Path, int] | None:
    """(path, step) of the run's newest generator checkpoint, or None."""
    return _newest(Path(run) / "checkpoints", "*-s*.safetensors", CHECKPOINT_RE, skip_critic=True)


def newest_critic(run: str | Path) -> Path | None:
    """The run's newest critic checkpoint (highest step), or None."""
    found = _newest(Path(run) / "checkpoints", "*.critic.safetensors", CRITIC_RE, skip_critic=False)
    return found[0] if found else None


def run_checkpoints(project: Project) -> list[tuple[str, Path, str]]:
    """(label, path, "checkpoint") of the newest generator checkpoint of each run that has no
    final model yet (a run in progress or stopped), so that it can be compared or applied too."""
    out = []
    for run in list_runs(project):
        if run.has_model:
            continue
        found = newest_checkpoint(run.path)
        if found is not None:
            out.append((f"Run: {run.name} (step {found[1]})", found[0], "checkpoint"))
    return out


# ---------------------------------------------------------------------------------- samples
@dataclass(frozen=True)
class Sample:
    """One epoch's sample grid of a run."""

    stage: str
    epoch: int  # 0-based, as in the file name
    path: Path
    kind: str = "restore"  # the stage's kind: restore, critic, gan, wgan, save-preds


def list_samples(run: str | Path) -> list[Sample]:
    """The run's sample grids ordered by stage (as in config.json) then epoch."""
    folder = Path(run) / "samples"
    if not folder.is_dir():
        return []
    kinds = stage_kinds(read_config(run))
    order = {name: i for i, name in enumerate(kinds)}
    out = []
    for p in folder.glob("*.png"):
        m = SAMPLE_RE.match(p.name)
        if m and not p.name.startswith("."):
            stage = m["stage"]
            out.append(Sample(stage, int(m["epoch"]), p, kinds.get(stage) or guess_kind(stage)))
    out.sort(key=lambda s: (order.get(s.stage, len(order)), s.stage, s.epoch))
    return out


def samples_by_time(run: str | Path) -> list[Path]:
    """The run's sample PNGs, oldest written first (the order the Train panel lists them)."""
    folder = Path(run) / "samples"
    files = []
    for p in folder.glob("*.png") if folder.is_dir() else []:
        try:
            files.append((p.stat().st_mtime, p))
        except OSError:
            continue
    return [p for _t, p in sorted(files)]
