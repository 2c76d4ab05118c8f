"""Inspect panel: scrub through a run's sample images epoch by epoch and see where the critic
believes a generated image is fake.

The training engine writes ``samples/<stage>_epoch<NNN>.png`` after every epoch: for restore
and GAN stages a grid of rows (input | prediction | target), for WGAN stages the fixed-noise grid.
The critic's patch map is computed here from the run's newest ``checkpoints/*.critic.safetensors``
on the prediction shown (the training engine keeps no per-epoch maps on disk): the critic learnt
real = 1, so 1 - sigmoid(logit) is its belief that a patch is fake.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from PySide6.QtCore import QFileSystemWatcher, QSize, Qt, QTimer
from PySide6.QtWidgets import (
    QBoxLayout,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..widgets.heatmap import HeatmapLegend, overlay_heatmap
from ..widgets.image_view import ImageView, ZoomBar
from ..widgets.common import invalidate_layouts

SAMPLE_RE = re.compile(r"^(?P<stage>.+)_epoch(?P<epoch>\d+)\.png$")
GRID_PAD = 4  # callbacks.PreviewCallback's grid padding
CRITIC_RE = re.compile(r"-s(\d+)\.critic\.safetensors$")


@dataclass(frozen=True)
class Sample:
    """One epoch's sample grid of a run."""

    stage: str
    epoch: int  # 0-based, as in the file name
    path: Path
    kind: str = "restore"  # the stage's kind: restore, critic, gan, wgan, save-preds


def read_config(run: Path) -> dict:
    try:
        data = json.loads((Path(run) / "config.json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def stage_kinds(config: dict) -> dict[str, str]:
    """Stage name -> kind, in the run's order."""
    out = {}
    for s in config.get("stages", []) or []:
        if isinstance(s, dict) and "name" in s:
            out[str(s["name"])] = str(s.get("kind", "restore"))
    return out


def list_samples(run: Path) -> list[Sample]:
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
            kind = kinds.get(stage, "wgan" if "wgan" in stage.lower() else ("gan" if "gan" in stage.lower() else "restore"))
            out.append(Sample(stage, int(m["epoch"]), p, kind))
    out.sort(key=lambda s: (order.get(s.stage, len(order)), s.stage, s.epoch))
    return out


def read_metrics(run: Path) -> dict[tuple[str, int], dict[str, str]]:
    """metrics.csv rows by (stage, epoch)."""
    out: dict[tuple[str, int], dict[str, str]] = {}
    try:
        with open(Path(run) / "metrics.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                try:
                    out[(row.get("stage", ""), int(float(row.get("epoch", "")) ))] = row
                except (TypeError, ValueError):
                    continue
    except OSError:
        pass
    return out


def split_grid(grid: np.ndarray, n_rows: int | None = None, n_cols: int = 3, pad: int = GRID_PAD) -> list[list[np.ndarray]]:
    """Cut a PreviewCallback grid (rows of n_cols equal cells, ``pad`` px apart) into its cells.

    ``n_rows`` (the run's preview_samples) is a hint: a dataset with fewer valid images gives
    fewer rows, so it is kept only when the padding between its rows is plain background; else
    the cells are taken as square."""
    h, w = grid.shape[:2]
    cw = (w - pad) // n_cols - pad
    if cw <= 0:
        return []
    square = max(1, (h - pad) // (cw + pad))
    if n_rows is None or n_rows <= 0 or (n_rows != square and not _rows_fit(grid, n_rows, pad)):
        n_rows = square
    ch = (h - pad) // n_rows - pad
    if ch <= 0:
        return []
    rows = []
    for i in range(n_rows):
        y = pad + i * (ch + pad)
        rows.append([grid[y:y + ch, pad + j * (cw + pad): pad + j * (cw + pad) + cw] for j in range(n_cols)])
    return rows


def _rows_fit(grid: np.ndarray, n_rows: int, pad: int) -> bool:
    """True when ``grid`` divides into ``n_rows`` rows separated by bands of its background."""
    h = grid.shape[0]
    ch = (h - pad) // n_rows - pad
    if ch <= 0 or pad <= 0:
        return ch > 0
    bg = grid[0, 0]
    for i in range(1, n_rows):
        y = pad + i * (ch + pad)
        if not np.all(grid[y - pad:y] == bg):
            return False
    return True


def newest_critic(run: Path) -> Path | None:
    """The run's newest critic checkpoint (highest step), or None."""
    folder = Path(run) / "checkpoints"
    best, best_step = None, -1
    if folder.is_dir():
        for p in folder.glob("*.critic.safetensors"):
            m = CRITIC_RE.search(p.name)
            step = int(m.group(1)) if m else 0
            if step > best_step and not p.name.startswith("."):
                best, best_step = p, step
    return best


def _factor(n: int, aspect: float) -> tuple[int, int]:
    """h, w with h * w = n and w / h closest to ``aspect``."""
    best = (1, n)
    for h in range(1, int(n**0.5) + 1):
        if n % h == 0:
            for hh, ww in ((h, n // h), (n // h, h)):
                if abs(np.log(ww / hh / aspect)) < abs(np.log(best[1] / best[0] / aspect)):
                    best = (hh, ww)
    return best


def critic_min_side(critic, n_channels: int | None = None) -> int:
    """The smallest square input (px) the critic accepts: its stride-2 convs and final unpadded
    conv need e.g. 64 px for gan-critic with 3 blocks. Found by trying sizes; cached on the net."""
    import torch
    from torch import nn

    cached = getattr(critic, "_lesson7_min_side", None)
    if cached:
        return int(cached)
    if n_channels is None:
        conv = next((m for m in critic.modules() if isinstance(m, nn.Conv2d)), None)
        n_channels = conv.in_channels if conv is not None else 3
    dev = next(critic.parameters()).device
    found = 0
    with torch.no_grad():
        for side in (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024):
            try:
                _critic_logits(critic, torch.zeros(1, n_channels, side, side, device=dev))
            except RuntimeError:
                continue
            found = side
            break
    if not found:
        raise ValueError("the critic accepts no input size up to 1024 px")
    try:
        critic._lesson7_min_side = found
    except AttributeError:
        pass
    return found


def _critic_logits(critic, x):
    from torch import nn

    if isinstance(critic, nn.Sequential) and type(critic[-1]).__name__ == "Flatten":
        return critic[:-1](x)  # (1, 1, h, w): keep the patch layout
    return critic(x)


def critic_fake_map(critic, image: np.ndarray) -> np.ndarray:
    """The critic's per-patch belief that ``image`` (HxWx3 uint8) is fake: 1 - sigmoid(logit), 2-D.

    An image smaller than the critic's minimum input is mirror-padded (at its own pixel scale,
    the scale the critic was trained at) to that size; only the patches centred on the image
    itself are returned, so the map lines up with the image shown."""
    import torch

    img = np.ascontiguousarray(image[:, :, :3])
    h, w = img.shape[:2]
    min_side = critic_min_side(critic, img.shape[2])
    top = left = 0
    ph, pw = max(h, min_side), max(w, min_side)
    if (ph, pw) != (h, w):
        top, left = (ph - h) // 2, (pw - w) // 2
        img = np.pad(img, ((top, ph - h - top), (left, pw - w - left), (0, 0)), mode="symmetric")
    x = torch.from_numpy(np.ascontiguousarray(img)).float().div(255).permute(2, 0, 1)[None]
    dev = next(critic.parameters()).device
    x = x.to(dev)
    with torch.no_grad():
        out = _critic_logits(critic, x)
    out = out.float().cpu()[0]
    if out.ndim == 3:
        out = out[0]
    if out.ndim == 1:
        gh, gw = _factor(out.numel(), pw / ph)
        out = out.reshape(gh, gw)
    fake = (1.0 - torch.sigmoid(out)).numpy()
    if (ph, pw) != (h, w):
        fake = fake[_inside(fake.shape[0], ph, top, h), :][:, _inside(fake.shape[1], pw, left, w)]
    return fake


def _inside(n: int, size: int, start: int, length: int) -> slice:
    """The patches (of ``n`` spread over ``size`` px) whose centres lie in [start, start + length);
    at least the one nearest to the middle of that span."""
    centres = (np.arange(n) + 0.5) * size / n
    idx = np.flatnonzero((centres >= start) & (centres < start + length))
    if idx.size == 0:
        k = int(np.argmin(np.abs(centres - (start + length / 2))))
        return slice(k, k + 1)
    return slice(int(idx[0]), int(idx[-1]) + 1)


def critic_job(critic_path: Path, image: np.ndarray, *, cache: dict | None = None, device: str = "cpu",
               on_event=None, cancel=None) -> np.ndarray:
    """Load the critic (cached by path) and return its fake-map of ``image``."""
    from lesson7_studio.core import checkpoint

    key = str(critic_path)
    net = cache.get(key) if cache is not None else None
    if net is None:
        net = checkpoint.load_model(critic_path, device=device).net
        net.eval()
        if cache is not None:
            cache.clear()
            cache[key] = net
    return critic_fake_map(net, image)


class GanPanel(QWidget):
    """Timeline of a run's samples with the critic's opinion of a generated image."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._run: Path | None = None
        self._outside: list[str] = []  # runs opened from outside the project (kept in the list)
        self._samples: list[Sample] = []
        self._all: list[Sample] = []
        self._metrics: dict = {}
        self._config: dict = {}
        self._grid: np.ndarray | None = None
        self._cells: list[list[np.ndarray]] = []
        self._critic_cache: dict = {}
        self._critic_path: Path | None = None
        self._worker = None
        self._want_critic: tuple | None = None
        self._fake_map: np.ndarray | None = None
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self._samples_changed)
        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(300)
        self._reload_timer.timeout.connect(self.reload)
        self._play = QTimer(self)
        self._play.setInterval(700)
        self._play.timeout.connect(self._step)
        self._build()
        self.refresh_runs()
        ctx.runs_changed.connect(self.refresh_runs)
        ctx.project_changed.connect(self._on_project_changed)
        invalidate_layouts(self)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        root.setSpacing(6)

        row = QHBoxLayout()
        row.addWidget(QLabel("Run", self))
        self.run_combo = QComboBox(self)
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_combo.setMinimumContentsLength(24)
        self.run_combo.currentIndexChanged.connect(self._run_chosen)
        row.addWidget(self.run_combo, 2)
        row.addWidget(QLabel("Stage", self))
        self.stage_combo = QComboBox(self)
        self.stage_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.stage_combo.currentIndexChanged.connect(lambda _i: self._apply_stage_filter())
        row.addWidget(self.stage_combo)
        self.reload_button = QPushButton("Reload", self)
        self.reload_button.setToolTip("Read the project's runs and this run's folder again "
                                      "(new epochs also appear by themselves)")
        self.reload_button.clicked.connect(lambda _checked=False: self.reload_all())
        row.addWidget(self.reload_button)
        row.addStretch(1)
        root.addLayout(row)
        self.run_info = QLabel("", self)
        self.run_info.setWordWrap(True)
        root.addWidget(self.run_info)

        row = QHBoxLayout()
        self.play_button = QToolButton(self)
        self.play_button.setText("\u25b6 Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Step through the epochs")
        self.play_button.toggled.connect(self.set_playing)
        row.addWidget(self.play_button)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.valueChanged.connect(self._show_index)
        row.addWidget(self.slider, 1)
        self.epoch_label = QLabel("", self)
        self.epoch_label.setMinimumWidth(170)
        row.addWidget(self.epoch_label)
        root.addLayout(row)
        self.metrics_label = QLabel("", self)
        self.metrics_label.setWordWrap(True)
        root.addWidget(self.metrics_label)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        left = QWidget(split)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.grid_caption = QLabel("Samples: input | prediction | target", left)
        ll.addWidget(self.grid_caption)
        self.grid_view = ImageView(left, placeholder="Choose a run with sample images.\n"
                                                     "Training writes one grid per epoch.")
        ll.addWidget(self.grid_view, 1)
        ll.addWidget(ZoomBar(self.grid_view, left), 0, Qt.AlignmentFlag.AlignRight)

        self.critic_box = QWidget(split)
        cl = QVBoxLayout(self.critic_box)
        cl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Sample", self.critic_box))
        self.row_spin = QSpinBox(self.critic_box)
        self.row_spin.setMinimum(1)
        self.row_spin.valueChanged.connect(lambda _v: self._show_cells())
        row.addWidget(self.row_spin)
        row.addWidget(QLabel("Judge", self.critic_box))
        self.judge_combo = QComboBox(self.critic_box)
        self.judge_combo.addItem("Prediction (generated)", 1)
        self.judge_combo.addItem("Target (real)", 2)
        self.judge_combo.setToolTip("Which image the critic looks at; compare its opinion of a real image")
        self.judge_combo.currentIndexChanged.connect(lambda _i: self._show_cells())
        row.addWidget(self.judge_combo)
        row.addStretch(1)
        cl.addLayout(row)
        pair = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self._pair = pair
        self.image_view = ImageView(self.critic_box, placeholder="No sample")
        self.heat_view = ImageView(self.critic_box, placeholder="No critic map")
        self.image_view.link(self.heat_view)
        pair.addWidget(self.image_view, 1)
        pair.addWidget(self.heat_view, 1)
        cl.addLayout(pair, 1)
        self.legend = HeatmapLegend(self.critic_box, colormap="fake", title="Critic: each patch's chance of being fake",
                                    low="real (0)", middle="unsure", high="fake (1)")
        cl.addWidget(self.legend)
        self.critic_label = QLabel("", self.critic_box)
        self.critic_label.setWordWrap(True)
        cl.addWidget(self.critic_label)
        split.addWidget(left)
        split.addWidget(self.critic_box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        root.addWidget(split, 1)

    def _on_project_changed(self, _project) -> None:
        self._outside.clear()
        self.refresh_runs()

    # ------------------------------------------------------------------ panel protocol
    def on_shown(self) -> None:
        self.refresh_runs()

    def is_busy(self) -> bool:
        return False

    def shutdown(self) -> None:
        self._play.stop()
        if self._worker is not None:
            self._worker.cancel()
            self._worker.wait(5000)

    # ------------------------------------------------------------------ runs
    def refresh_runs(self) -> None:
        cur = self.run_combo.currentData()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        try:
            runs = self.ctx.project.list_runs()
        except OSError:
            runs = []
        for r in runs:
            kinds = set(stage_kinds(r.config).values())
            tag = "WGAN" if "wgan" in kinds else ("GAN" if "gan" in kinds else "")
            recipe = r.config.get("recipe", "")
            text = r.name + (f"  [{tag}]" if tag else "") + (f"  \u00b7 {recipe}" if recipe and recipe not in r.name else "")
            self.run_combo.addItem(text, str(r.path))
        for extra in self._outside:
            if self.run_combo.findData(extra) < 0 and Path(extra).is_dir():
                self.run_combo.addItem(Path(extra).name, extra)
        if self.run_combo.count() == 0:
            self.run_combo.addItem("No runs in this project yet", None)
        idx = self.run_combo.findData(cur) if cur is not None else -1
        if idx < 0:  # prefer the newest GAN run
            idx = next((i for i in range(self.run_combo.count()) if "GAN]" in self.run_combo.itemText(i)), 0)
        self.run_combo.setCurrentIndex(idx)
        self.run_combo.blockSignals(False)
        if self.run_combo.currentData() != (str(self._run) if self._run else None):
            self._run_chosen()

    def reload_all(self) -> None:
        """What Reload does: list the project's runs again (a run made from the command line
        appears) and read the shown run's folder again."""
        shown = self._run
        self.refresh_runs()  # reloads by itself only when the shown run changed
        if self._run == shown:
            self.reload()

    def open_run(self, path) -> None:
        """Show the run in ``path`` (it need not belong to the project)."""
        path = Path(path)
        idx = self.run_combo.findData(str(path))
        if idx < 0:
            if self.run_combo.count() == 1 and self.run_combo.itemData(0) is None:
                self.run_combo.clear()
            self.run_combo.addItem(path.name, str(path))
            self._outside.append(str(path))
            idx = self.run_combo.count() - 1
        if idx == self.run_combo.currentIndex():
            self._run_chosen()
        else:
            self.run_combo.setCurrentIndex(idx)

    def _run_chosen(self, *_a) -> None:
        d = self.run_combo.currentData()
        self._run = Path(d) if d else None
        if self._watcher.directories():
            self._watcher.removePaths(self._watcher.directories())
        self._critic_cache.clear()
        if self._run is not None and (self._run / "samples").is_dir():
            self._watcher.addPath(str(self._run / "samples"))
        self.reload(jump_to_end=True)

    def _samples_changed(self, _path: str) -> None:
        self._reload_timer.start()

    def reload(self, jump_to_end: bool = False) -> None:
        """Read the run folder again; stays on the shown epoch unless it was the newest one."""
        at_end = jump_to_end or self.slider.value() >= self.slider.maximum()
        current = self.current_sample()
        run = self._run
        self._config = read_config(run) if run else {}
        self._metrics = read_metrics(run) if run else {}
        self._all = list_samples(run) if run else []
        self._critic_path = newest_critic(run) if run else None
        stages = list(dict.fromkeys(s.stage for s in self._all))
        cur_stage = self.stage_combo.currentData()
        self.stage_combo.blockSignals(True)
        self.stage_combo.clear()
        self.stage_combo.addItem("All stages", None)
        for st in stages:
            self.stage_combo.addItem(st, st)
        self.stage_combo.setCurrentIndex(max(0, self.stage_combo.findData(cur_stage)))
        self.stage_combo.blockSignals(False)
        self._describe_run()
        self._apply_stage_filter(keep=None if at_end else current)

    def _describe_run(self) -> None:
        if self._run is None:
            self.run_info.setText("")
            return
        cfg = self._config
        stages = ", ".join(f"{n} ({k})" for n, k in stage_kinds(cfg).items())
        parts = [f"Recipe: {cfg.get('recipe', '?')}", f"model: {cfg.get('arch', cfg.get('model', '?'))}"]
        if stages:
            parts.append(f"stages: {stages}")
        parts.append(f"{len(self._all)} sample grid{'s' if len(self._all) != 1 else ''}")
        self.run_info.setText("  \u00b7  ".join(parts))
        self.run_info.setToolTip(str(self._run))

    def _apply_stage_filter(self, keep: Sample | None = None) -> None:
        stage = self.stage_combo.currentData()
        self._samples = [s for s in self._all if stage is None or s.stage == stage]
        n = len(self._samples)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, n - 1))
        idx = self._samples.index(keep) if keep in self._samples else max(0, n - 1)
        self.slider.setValue(idx)
        self.slider.blockSignals(False)
        self.slider.setEnabled(n > 1)
        self.play_button.setEnabled(n > 1)
        self._show_index(idx)

    def samples(self) -> list[Sample]:
        """The samples on the timeline (after the stage filter)."""
        return list(self._samples)

    def current_sample(self) -> Sample | None:
        i = self.slider.value()
        return self._samples[i] if 0 <= i < len(self._samples) else None

    # ------------------------------------------------------------------ timeline
    def set_playing(self, on: bool) -> None:
        if on and len(self._samples) > 1:
            if self.slider.value() >= self.slider.maximum():
                self.slider.setValue(0)
            self._play.start()
            self.play_button.setText("\u23f8 Pause")
        else:
            self._play.stop()
            self.play_button.setText("\u25b6 Play")
            if self.play_button.isChecked():
                self.play_button.setChecked(False)

    def is_playing(self) -> bool:
        return self._play.isActive()

    def _step(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.set_playing(False)
            return
        self.slider.setValue(self.slider.value() + 1)

    def show_epoch(self, index: int) -> None:
        self.slider.setValue(index)

    def _show_index(self, i: int) -> None:
        s = self._samples[i] if 0 <= i < len(self._samples) else None
        if s is None:
            self._grid = None
            self._cells = []
            self.grid_view.clear()
            self.epoch_label.setText("")
            self.metrics_label.setText("")
            self._show_cells()
            return
        from PIL import Image

        try:
            with Image.open(s.path) as im:
                grid = np.asarray(im.convert("RGB"))
        except OSError as err:
            self.grid_view.clear()
            self.grid_view.set_placeholder(f"Cannot read {s.path.name}: {err}")
            return
        self._grid = grid
        self.grid_view.set_image(grid, keep_view=True)
        n_epochs = sum(1 for x in self._all if x.stage == s.stage)
        self.epoch_label.setText(f"{s.stage} \u00b7 epoch {s.epoch + 1} of {n_epochs}  ({i + 1}/{len(self._samples)})")
        row = self._metrics.get((s.stage, s.epoch), {})
        shown = [(k, v) for k, v in row.items() if k not in ("stage", "epoch", "step", "lr", "seconds") and v not in ("", None)]
        self.metrics_label.setText("   ".join(f"{k} {_num(v)}" for k, v in shown[:8]))
        wgan = s.kind == "wgan"
        self.grid_caption.setText("Generator on fixed noise (WGAN), this epoch" if wgan
                                  else "Samples: input | prediction | target")
        n_rows = int(self._config.get("preview_samples") or 0) or None
        self._cells = [] if wgan else split_grid(grid, n_rows)
        self._show_cells()

    # ------------------------------------------------------------------ critic
    def _show_cells(self) -> None:
        s = self.current_sample()
        cells = self._cells
        self.critic_box.setVisible(bool(cells) or s is None)
        self.row_spin.setMaximum(max(1, len(cells)))
        if not cells:
            self.image_view.clear()
            self.heat_view.clear()
            self.critic_label.setText("")
            return
        r = min(self.row_spin.value(), len(cells)) - 1
        col = int(self.judge_combo.currentData() or 1)
        img = np.ascontiguousarray(cells[r][col])
        self._update_pair_direction(img.shape[1], img.shape[0])
        self.image_view.set_image(img, keep_view=True)
        self.image_view.set_label("Generated" if col == 1 else "Real")
        gan_stage = s is not None and s.kind in ("gan", "critic")
        if self._critic_path is None:
            self.heat_view.clear()
            self.heat_view.set_placeholder("This run has no critic checkpoint")
            self.critic_label.setText("The critic's opinion needs a GAN run (its critic is saved in checkpoints/).")
            self.legend.setVisible(False)
            return
        self.legend.setVisible(True)
        note = "" if gan_stage else " (this epoch is from a non-GAN stage)"
        self.critic_label.setText(f"Critic from {self._critic_path.name}, the newest saved{note}.")
        self._request_critic(img)

    def _update_pair_direction(self, cw: int | None = None, ch: int | None = None) -> None:
        """Image and critic map side by side, or one above the other, whichever shows them larger."""
        if cw is None:
            if not self._cells:
                return
            ch, cw = self._cells[0][1].shape[:2]
        bw, bh = max(1, self.image_view.width() + self.heat_view.width()), max(1, self.image_view.height())
        if self._pair.direction() == QBoxLayout.Direction.TopToBottom:
            bw, bh = max(1, self.image_view.width()), max(1, self.image_view.height() + self.heat_view.height())
        side = min(bw / 2 / cw, bh / ch)
        stacked = min(bw / cw, bh / 2 / ch)
        want = QBoxLayout.Direction.TopToBottom if stacked > side * 1.1 else QBoxLayout.Direction.LeftToRight
        if want != self._pair.direction():
            self._pair.setDirection(want)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_pair_direction()

    def _request_critic(self, img: np.ndarray) -> None:
        self._want_critic = (self._critic_path, img)
        if self._worker is not None and self._worker.is_running():
            return  # picked up when the running one ends
        self._run_critic()

    def _run_critic(self) -> None:
        if self._want_critic is None:
            return
        path, img = self._want_critic
        self._want_critic = None
        w = self.ctx.start_worker(critic_job, path, img, cache=self._critic_cache)
        self._worker = w
        self._critic_img = img
        w.finished.connect(self._on_critic)
        w.failed.connect(self._on_critic_failed)
        w.done.connect(self._critic_done)

    def _critic_done(self) -> None:
        self._worker = None
        self._run_critic()

    def _on_critic(self, fake: np.ndarray) -> None:
        if self._want_critic is not None:
            return  # a newer image is waiting
        img = self._critic_img
        self._fake_map = fake
        self.heat_view.set_image(overlay_heatmap(img, fake, "fake", 0.6), keep_view=True)
        mean = float(np.mean(fake))
        self.heat_view.set_label(f"Critic: {mean:.0%} fake on average")
        self.heat_view.setToolTip(f"{fake.shape[1]}\u00d7{fake.shape[0]} patches; mean belief fake {mean:.2f}")

    def _on_critic_failed(self, exc: BaseException) -> None:
        self.heat_view.clear()
        self.heat_view.set_placeholder("The critic could not score this image")
        self.critic_label.setText("Critic failed: " + str(getattr(exc, "message", exc)).splitlines()[0])

    def fake_map(self) -> np.ndarray | None:
        """The last critic map shown (patch grid of 'fake' beliefs in [0,1])."""
        return self._fake_map

    def sizeHint(self) -> QSize:
        return QSize(1000, 640)


def _num(v: Any) -> str:
    """A metric for display: 4 significant digits; missing (empty, nan) as an em dash."""
    if v is None:
        return "\u2014"
    try:
        f = float(v)
    except (TypeError, ValueError):
        text = str(v).strip()
        return text if text and text.lower() not in ("nan", "none") else "\u2014"
    if not np.isfinite(f):
        return "\u2014" if np.isnan(f) else ("\u221e" if f > 0 else "\u2212\u221e")
    return f"{f:.4g}"
