"""Train panel: recipe, where the generator starts from (scratch, ImageNet encoder, the starter
model or any checkpoint of the project), hyper-parameters, Start / Pause / Cancel / Resume, the
whole run's progress with an ETA, live curves, sample predictions, the LR finder (drawn as it
sweeps), a log, and the project's past runs."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core.errors import TrainingError
from lesson7_studio.core.events import (
    BatchEnd,
    CheckpointSaved,
    EpochEnd,
    Finished,
    Log,
    LRFindPoint,
    Progress,
    SampleImages,
    StageStart,
    format_duration,
    format_lr,
)
from lesson7_studio.core.project import RunInfo
from lesson7_studio.core.train import recipes as train_recipes

from ..context import AppContext
from ..errors import show_error
from ..widgets.common import button, header, label, panel_layout
from ..widgets.curves import LrFinderPlot, TrainingCurves
from ..widgets.samples import SampleGrid

LOSSES = ("mse", "l1", "feature")
# "Start from" choices (the CLI's --init / --no-pretrained): (kind, checkpoint); kind is
# "scratch", "imagenet" (encoder weights), "starter" (the bundled model) or "checkpoint"
START_HINTS = {
    "scratch": "Random weights: slowest to learn, needs no download.",
    "imagenet": "The encoder starts from ImageNet classification weights (downloaded once), the decoder "
                "from random ones: the lesson's transfer learning.",
    "starter": "Fine-tune the bundled starter model: its weights and architecture; the Model choice is "
               "ignored. Use lower learning rates (the finetune recipe has them).",
    "checkpoint": "Continue from this checkpoint's weights and architecture; the Model choice is ignored.",
}
STATUS_EVERY_S = 0.2  # status line refresh while batches stream in
LEFT_WIDTH = 330  # settings column


def _head_lr(lr: Any) -> float:
    if isinstance(lr, slice):
        return float(lr.stop)
    if isinstance(lr, (list, tuple)):
        return float(lr[-1])
    return float(lr)


def run_training(config, *, resume: bool = False, on_event=None, cancel=None):
    """``train.run.train`` looked up at call time (tests replace it)."""
    import importlib

    run_mod = importlib.import_module("lesson7_studio.core.train.run")
    return run_mod.train(config, on_event=on_event, cancel=cancel, resume=resume)


def run_lr_find(config, *, num_it: int = 100, on_event=None, cancel=None):
    import importlib

    lr_mod = importlib.import_module("lesson7_studio.core.train.lr_find")
    return lr_mod.lr_find(config, num_it=num_it, on_event=on_event, cancel=cancel)


def has_imagenet_encoder(arch: str) -> bool:
    """Whether registry model ``arch`` can start its encoder from ImageNet weights."""
    from lesson7_studio.core import models

    try:
        return any(o.name == "pretrained" for o in models.options_of(arch))
    except Exception:  # noqa: BLE001 - an unknown name simply has no such option
        return False


def available_devices() -> list[str]:
    import torch

    devs = ["auto", "cpu"]
    if torch.cuda.is_available():
        devs.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devs.append("mps")
    return devs


class StageRow:
    """One stage of the recipe: include it or not, and its epochs."""

    def __init__(self, stage) -> None:
        self.name = stage.name
        self.kind = stage.kind
        self.check = QCheckBox(f"{stage.name}")
        self.check.setChecked(True)
        self.check.setToolTip(f"Stage '{stage.name}' ({stage.kind}); untick to skip it")
        self.kind_label = label(stage.kind, "hint")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10000)
        self.epochs.setMaximumWidth(90)
        self.epochs.setSuffix(" ep")
        if stage.trains:
            self.epochs.setValue(max(1, stage.epochs))
        else:
            self.epochs.setEnabled(False)
            self.epochs.setSpecialValueText("—")
            self.epochs.setMinimum(0)
            self.epochs.setValue(0)


class TrainPanel(QWidget):
    """Configure and run training; watch curves and samples; reopen past runs."""

    run_started = Signal(object)  # run folder Path
    run_ended = Signal(str)  # "finished" | "failed" | "cancelled"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.worker = None
        self.lr_worker = None
        self.run_dir: Path | None = None
        self.resumable_dir: Path | None = None
        self.last_result = None
        self.last_lr_result = None
        self.stage_rows: list[StageRow] = []
        self._last_status = 0.0
        self._t_start = 0.0
        self._stage_text = ""
        self._loading_recipe = False
        self._restorer_recipe = True
        s = ctx.settings

        lay = panel_layout(self)
        lay.addWidget(header("Train", "Train a model on one of the project's datasets and watch it learn: "
                             "curves, sample predictions and a log update live."))

        # ---------------------------------------------------------------- left: settings
        setup = QGroupBox("Setup")
        sf = QFormLayout(setup)
        self.recipe_combo = QComboBox()
        self.recipe_combo.setObjectName("trainRecipe")
        for name in train_recipes.recipe_names():
            self.recipe_combo.addItem(name, name)
        self.recipe_desc = label("", "hint", wrap=True)
        self.dataset_combo = QComboBox()
        self.dataset_combo.setObjectName("trainDataset")
        self.dataset_info = label("", "hint", wrap=True)
        self.dataset_info.setObjectName("trainDatasetInfo")
        self.dataset_combo.currentIndexChanged.connect(self._dataset_chosen)
        self.start_combo = QComboBox()
        self.start_combo.setObjectName("trainStartFrom")
        self.start_combo.setToolTip("Where the generator's weights start (the CLI's --init and --no-pretrained)")
        self.start_hint = label("", "hint", wrap=True)
        self.start_combo.currentIndexChanged.connect(self._start_chosen)
        self.model_combo = QComboBox()
        self.model_combo.setObjectName("trainModel")
        self.model_combo.setToolTip("The recipe's own network, or the one chosen in the Model panel")
        self.model_combo.currentIndexChanged.connect(lambda *_: self._fill_start())
        for c in (self.recipe_combo, self.dataset_combo, self.start_combo, self.model_combo):
            c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            c.setMinimumContentsLength(12)
            c.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.device_combo = QComboBox()
        for d in available_devices():
            self.device_combo.addItem(d, d)
        dev = s.value("train/device", "auto")
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(dev)))
        sf.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        sf.addRow("Recipe", self.recipe_combo)
        sf.addRow(self.recipe_desc)
        sf.addRow("Dataset", self.dataset_combo)
        sf.addRow(self.dataset_info)
        sf.addRow("Start from", self.start_combo)
        sf.addRow(self.start_hint)
        sf.addRow("Model", self.model_combo)
        sf.addRow("Device", self.device_combo)

        hyper = QGroupBox("Hyper-parameters")
        hf = QFormLayout(hyper)
        self.lr_edit = QLineEdit()
        self.lr_edit.setObjectName("lrEdit")
        self.lr_edit.setToolTip("Head learning rate of the first training stage; the other stages keep "
                                "the recipe's ratios")
        self.bs_spin = QSpinBox()
        self.bs_spin.setRange(1, 4096)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(8, 4096)
        self.size_spin.setSingleStep(16)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Crop size of the target (high-res) images")
        self.loss_combo = QComboBox()
        for l_ in LOSSES:
            self.loss_combo.addItem(l_, l_)
        self.loss_combo.setToolTip("mse / l1: pixel losses; feature: the lesson's VGG16 perceptual loss "
                                   "(needs the VGG16_bn weights)")
        self.max_minutes = QSpinBox()
        self.max_minutes.setRange(0, 100000)
        self.max_minutes.setSpecialValueText("no limit")
        self.max_minutes.setSuffix(" min")
        self.max_minutes.setToolTip("Stop (resumable) after this much training time")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(0, 1000000)
        self.steps_spin.setSpecialValueText("all")
        self.steps_spin.setToolTip("Training batches per epoch: fewer than the data holds cuts the epoch; "
                                   "more repeats a small dataset with new random crops (all = one pass)")
        for w in (self.lr_edit, self.bs_spin, self.size_spin, self.max_minutes, self.steps_spin):
            w.setMaximumWidth(140)
        hf.addRow("Learning rate", self.lr_edit)
        hf.addRow("Batch size", self.bs_spin)
        hf.addRow("Image size", self.size_spin)
        hf.addRow("Loss", self.loss_combo)
        hf.addRow("Time limit", self.max_minutes)
        hf.addRow("Batches/epoch", self.steps_spin)

        self.stages_box = QGroupBox("Stages (NoGAN: generator → predictions → critic → GAN)")
        self.stages_grid = QGridLayout(self.stages_box)
        self.stages_grid.setColumnStretch(1, 1)

        self.start_button = button("Start", "primary", "Start a new run in the project's runs/ folder")
        self.pause_button = button("Pause", tooltip="Pause after the current batch")
        self.resume_button = button("Resume", tooltip="Continue a paused run, or the last stopped run "
                                    "from its checkpoint")
        self.cancel_button = button("Cancel", "danger", "Stop after the current batch; a checkpoint is kept")
        self.lr_button = button("Find LR", tooltip="Sweep the learning rate over ~100 batches (LR finder)")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.cancel_button.clicked.connect(self.cancel)
        self.lr_button.clicked.connect(self.find_lr)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 6, 0)
        ll.addWidget(setup)
        ll.addWidget(hyper)
        ll.addWidget(self.stages_box)
        ll.addStretch(1)
        left_scroll = QScrollArea()
        left_scroll.setWidgetResizable(True)
        left_scroll.setWidget(left)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setMinimumWidth(LEFT_WIDTH)

        # ---------------------------------------------------------------- right: progress + tabs
        # the status line wraps (never cut: the learning rate is at its end) and keeps two lines
        self.status_label = label("Ready.", "", wrap=True)
        self.status_label.setObjectName("trainStatus")
        self.status_label.setMinimumHeight(2 * self.status_label.fontMetrics().lineSpacing() + 4)
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        # the whole run: steps of every stage and epoch, with the ETA in its text
        self.progress = QProgressBar()
        self.progress.setObjectName("trainProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.progress.setMinimumWidth(160)
        self.progress.setVisible(False)
        self.paused_badge = label("Paused", "", wrap=False)
        self.paused_badge.setObjectName("trainPaused")
        self.paused_badge.setStyleSheet("QLabel { background: #f2c94c; color: #3d2e00; border-radius: 4px;"
                                        " padding: 2px 8px; font-weight: bold; }")
        self.paused_badge.setVisible(False)
        top = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.resume_button, self.cancel_button):
            top.addWidget(b)
        top.addSpacing(8)
        top.addWidget(self.paused_badge)
        top.addWidget(self.progress, 1)

        self.tabs = QTabWidget()
        self.curves = TrainingCurves()
        self.samples = SampleGrid()
        self.sample_files = QComboBox()
        self.sample_files.setVisible(False)
        self.sample_files.currentIndexChanged.connect(self._sample_file_chosen)
        samples_tab = QWidget()
        stl = QVBoxLayout(samples_tab)
        stl.setContentsMargins(4, 4, 4, 4)
        stl.addWidget(self.sample_files)
        stl.addWidget(self.samples, 1)

        self.lr_plot = LrFinderPlot()
        self.lr_result_label = label("Run the LR finder to get a suggested learning rate.", "hint", wrap=True)
        self.use_lr_button = button("Use this lr", "primary")
        self.use_lr_button.setEnabled(False)
        self.use_lr_button.clicked.connect(self.use_suggested_lr)
        lr_tab = QWidget()
        lrl = QVBoxLayout(lr_tab)
        lrl.setContentsMargins(4, 4, 4, 4)
        lrl.addWidget(self.lr_plot, 1)
        lrrow = QHBoxLayout()
        lrrow.addWidget(self.lr_button)
        lrrow.addWidget(self.lr_result_label, 1)
        lrrow.addWidget(self.use_lr_button)
        lrl.addLayout(lrrow)

        self.log = QPlainTextEdit()
        self.log.setObjectName("logView")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)

        self.runs = QTreeWidget()
        self.runs.setObjectName("runsList")
        self.runs.setHeaderLabels(["Run", "Recipe", "Model", "Status", "PSNR", "Modified"])
        self.runs.setRootIsDecorated(False)
        self.runs.setAlternatingRowColors(True)
        self.runs.itemDoubleClicked.connect(lambda *_: self.open_selected_run())
        self.runs.itemSelectionChanged.connect(self._update_buttons)
        self.open_run_button = button("Open", tooltip="Show this run's curves and samples")
        self.open_run_button.clicked.connect(self.open_selected_run)
        self.resume_run_button = button("Resume run", tooltip="Continue this run from its last checkpoint")
        self.resume_run_button.clicked.connect(self.resume_selected_run)
        self.folder_button = button("Show folder")
        self.folder_button.clicked.connect(self._show_run_folder)
        runs_tab = QWidget()
        rtl = QVBoxLayout(runs_tab)
        rtl.setContentsMargins(4, 4, 4, 4)
        rtl.addWidget(self.runs, 1)
        rrow = QHBoxLayout()
        rrow.addWidget(self.open_run_button)
        rrow.addWidget(self.resume_run_button)
        rrow.addStretch(1)
        rrow.addWidget(self.folder_button)
        rtl.addLayout(rrow)

        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(samples_tab, "Samples")
        self.tabs.addTab(lr_tab, "LR finder")
        self.tabs.addTab(self.log, "Log")
        self.tabs.addTab(runs_tab, "Runs")

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        rl.addLayout(top)
        rl.addWidget(self.status_label)
        rl.addWidget(self.tabs, 1)

        split = QSplitter()
        split.addWidget(left_scroll)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setCollapsible(1, False)
        split.setSizes([left_scroll.minimumWidth(), 840])
        lay.addWidget(split, 1)

        # ---------------------------------------------------------------- wiring
        self.recipe_combo.currentIndexChanged.connect(self._recipe_chosen)
        ctx.datasets_changed.connect(self.refresh_datasets)
        ctx.runs_changed.connect(self.refresh_runs)
        ctx.project_changed.connect(lambda _p: (self.refresh_datasets(), self.refresh_runs()))
        ctx.model_chosen.connect(self._model_chosen)
        for sig in (ctx.models_changed, ctx.runs_changed):  # new checkpoints to start from
            sig.connect(lambda *_: self._fill_start())
        recipe = s.value("train/recipe", "quick")
        idx = self.recipe_combo.findData(recipe)
        self.recipe_combo.setCurrentIndex(idx if idx >= 0 else 0)
        self._recipe_chosen()
        self._restore_hyper()
        self.refresh_datasets()
        self.refresh_runs()
        self._update_buttons()

    # ------------------------------------------------------------------ recipe and fields
    def recipe_name(self) -> str:
        return self.recipe_combo.currentData()

    def _recipe_chosen(self, *_args) -> None:
        cfg = train_recipes.get_recipe(self.recipe_name())
        self._loading_recipe = True
        self.recipe_desc.setText(cfg.description)
        self.lr_edit.setText(f"{_head_lr(next((st.lr for st in cfg.stages if st.trains), 1e-3)):.3g}")
        self.bs_spin.setValue(cfg.batch_size)
        self.size_spin.setValue(cfg.size)
        is_wgan = any(st.kind == "wgan" for st in cfg.stages)
        self.loss_combo.setEnabled(not is_wgan)
        if cfg.loss in LOSSES:
            self.loss_combo.setCurrentIndex(self.loss_combo.findData(cfg.loss))
        self.steps_spin.setValue(cfg.steps_per_epoch or 0)
        self.max_minutes.setValue(int(cfg.max_minutes or 0))
        # stages
        while self.stages_grid.count():
            item = self.stages_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.stage_rows = []
        for i, st in enumerate(cfg.stages):
            row = StageRow(st)
            self.stage_rows.append(row)
            self.stages_grid.addWidget(row.check, i, 0)
            self.stages_grid.addWidget(row.kind_label, i, 1)
            self.stages_grid.addWidget(row.epochs, i, 2)
        gan = any(st.kind in ("critic", "gan") for st in cfg.stages)
        self.stages_box.setTitle("Stages (NoGAN: generator → predictions → critic → GAN)" if gan else "Stages")
        self._fill_models(cfg)
        self._fill_start(self._recipe_start(cfg))
        self._loading_recipe = False

    def _fill_models(self, cfg) -> None:
        current = self.model_combo.currentData()
        self.model_combo.clear()
        self.model_combo.addItem(f"Recipe default: {cfg.arch}", ("recipe", cfg.arch, {}))
        restorer_recipe = not any(st.kind == "wgan" for st in cfg.stages)
        name, opts = self.ctx.model_choice
        if restorer_recipe and name:
            self.model_combo.addItem(f"Model panel: {name}", ("panel", name, dict(opts)))
            if (current is not None and current[0] == "panel") or self.ctx.settings.value(
                "train/use_panel_model", False
            ):
                self.model_combo.setCurrentIndex(1)
        self._restorer_recipe = restorer_recipe
        self.model_combo.setEnabled(restorer_recipe)

    # ------------------------------------------------------------------ start from
    def _generator_arch(self) -> str:
        choice = self.model_combo.currentData()
        return choice[1] if choice else train_recipes.get_recipe(self.recipe_name()).arch

    @staticmethod
    def _recipe_start(cfg) -> str:
        """The recipe's own starting point, as a start-from key."""
        if any(st.kind == "wgan" for st in cfg.stages):
            return "scratch"
        if cfg.init:
            return "starter" if cfg.init == "starter" else str(cfg.init)
        return "imagenet" if cfg.pretrained and has_imagenet_encoder(cfg.arch) else "scratch"

    def start_key(self) -> str:
        """"scratch", "imagenet", "starter" or a checkpoint path."""
        data = self.start_combo.currentData()
        if not data:
            return "scratch"
        return data[1] if data[0] == "checkpoint" else data[0]

    def _fill_start(self, want: str | None = None) -> None:
        """The starting points this recipe and model allow. Selects ``want`` (default: the last
        choice of the user or the recipe, which comes back when a model change offers it again)."""
        if want is not None:
            self._start_wanted = want
        want = getattr(self, "_start_wanted", None) or self.start_key()
        cfg = train_recipes.get_recipe(self.recipe_name())
        restorer = not any(st.kind == "wgan" for st in cfg.stages)
        self.start_combo.blockSignals(True)
        self.start_combo.clear()
        self.start_combo.addItem("From scratch", ("scratch", None))
        if restorer:
            arch = self._generator_arch()
            if has_imagenet_encoder(arch):
                self.start_combo.addItem("ImageNet encoder", ("imagenet", None))
            self.start_combo.addItem("Starter model", ("starter", None))
            for m in self.ctx.available_models():
                if m.source == "starter" or Path(m.path).suffix.lower() != ".safetensors":
                    continue  # training starts only from this project's own checkpoints
                self.start_combo.addItem(m.label if m.source == "run" else f"Model: {m.label}",
                                         ("checkpoint", str(m.path)))
                self.start_combo.setItemData(self.start_combo.count() - 1, str(m.path), Qt.ItemDataRole.ToolTipRole)
            if want not in ("scratch", "imagenet", "starter") and self._start_index(want) < 0 and Path(want).is_file():
                self.start_combo.addItem(f"Checkpoint: {Path(want).name}", ("checkpoint", want))
        i = self._start_index(want)
        self.start_combo.setCurrentIndex(i if i >= 0 else 0)
        self.start_combo.setEnabled(restorer and not self.is_busy())
        self.start_combo.blockSignals(False)
        self._start_chosen()

    def _start_index(self, key: str) -> int:
        for i in range(self.start_combo.count()):
            kind, path = self.start_combo.itemData(i)
            if kind == key or (kind == "checkpoint" and path == key):
                return i
        return -1

    def _start_chosen(self, *_args) -> None:
        if self.start_combo.signalsBlocked() is False and self.sender() is self.start_combo:
            self._start_wanted = self.start_key()  # the user's own choice
        data = self.start_combo.currentData() or ("scratch", None)
        self.start_hint.setText(START_HINTS[data[0]])
        self._update_buttons()

    def _model_chosen(self, name: str, opts: dict) -> None:
        cfg = train_recipes.get_recipe(self.recipe_name())
        self._fill_models(cfg)
        if self.model_combo.count() > 1:
            self.model_combo.setCurrentIndex(1)

    def use_panel_model(self, name: str, options: dict) -> None:
        """Train ``name`` with ``options`` (as if chosen in the Model panel)."""
        self.ctx.set_model_choice(name, options)

    def set_stage_epochs(self, epochs: int) -> None:
        for r in self.stage_rows:
            if r.epochs.isEnabled():
                r.epochs.setValue(epochs)

    def _restore_hyper(self) -> None:
        raw = self.ctx.settings.value(f"train/hyper/{self.recipe_name()}", "")
        if not raw:
            return
        try:
            h = json.loads(raw)
        except ValueError:
            return
        self.lr_edit.setText(str(h.get("lr", self.lr_edit.text())))
        self.bs_spin.setValue(int(h.get("batch_size", self.bs_spin.value())))
        self.size_spin.setValue(int(h.get("size", self.size_spin.value())))
        i = self.loss_combo.findData(h.get("loss"))
        if i >= 0:
            self.loss_combo.setCurrentIndex(i)
        self.steps_spin.setValue(int(h.get("steps_per_epoch", 0)))
        self.max_minutes.setValue(int(h.get("max_minutes", 0)))
        if h.get("start_from"):
            self._fill_start(str(h["start_from"]))
        for r in self.stage_rows:
            st = h.get("stages", {}).get(r.name)
            if st:
                r.check.setChecked(bool(st.get("on", True)))
                if r.epochs.isEnabled():
                    r.epochs.setValue(int(st.get("epochs", r.epochs.value())))

    def _hyper_state(self) -> dict:
        return {
            "lr": self.lr_edit.text(),
            "batch_size": self.bs_spin.value(),
            "size": self.size_spin.value(),
            "loss": self.loss_combo.currentData(),
            "steps_per_epoch": self.steps_spin.value(),
            "max_minutes": self.max_minutes.value(),
            "start_from": self.start_key(),
            "stages": {r.name: {"on": r.check.isChecked(), "epochs": r.epochs.value()} for r in self.stage_rows},
        }

    def save_settings(self) -> None:
        s = self.ctx.settings
        s.set_value("train/recipe", self.recipe_name())
        s.set_value("train/device", self.device_combo.currentData())
        s.set_value(f"train/hyper/{self.recipe_name()}", json.dumps(self._hyper_state()))
        ds = self.dataset_combo.currentData()
        if ds:
            s.set_value("train/dataset", Path(ds).name)
        choice = self.model_combo.currentData()
        s.set_value("train/use_panel_model", bool(choice and choice[0] == "panel"))

    # ------------------------------------------------------------------ datasets and runs
    def refresh_datasets(self) -> None:
        current = self.dataset_combo.currentData()
        want = Path(current).name if current else self.ctx.settings.value("train/dataset", "")
        self.dataset_combo.clear()
        self.dataset_combo.blockSignals(True)
        self._dataset_infos = {}
        for ds in self.ctx.project.list_datasets():
            scale = f", ×{ds.scale}" if ds.scale and ds.scale > 1 else ""
            info = f"{ds.n_train} training / {ds.n_valid} validation pairs{scale}"
            self._dataset_infos[str(ds.path)] = info
            self.dataset_combo.addItem(ds.name, str(ds.path))
            self.dataset_combo.setItemData(self.dataset_combo.count() - 1, f"{ds.path}\n{info}",
                                           Qt.ItemDataRole.ToolTipRole)
        if self.dataset_combo.count() == 0:
            self.dataset_combo.addItem("No dataset yet: build one in the Data panel", None)
        else:
            for i in range(self.dataset_combo.count()):
                if Path(self.dataset_combo.itemData(i)).name == want:
                    self.dataset_combo.setCurrentIndex(i)
                    break
        self.dataset_combo.blockSignals(False)
        self._dataset_chosen()

    def _dataset_chosen(self, *_args) -> None:
        ds = self.dataset_combo.currentData()
        infos = getattr(self, "_dataset_infos", {})
        self.dataset_info.setText(infos.get(ds, "") if ds else "")
        self.dataset_info.setVisible(bool(ds))
        self._update_buttons()

    def refresh_runs(self) -> None:
        self.runs.clear()
        for r in self.ctx.project.list_runs():
            cfg = r.config
            psnr = self._last_metric(r, "psnr")
            item = QTreeWidgetItem([
                r.name,
                str(cfg.get("recipe", "")),
                str(cfg.get("arch", "")),
                r.status,
                f"{psnr:.2f} dB" if psnr is not None else "",
                datetime.fromtimestamp(r.modified).strftime("%Y-%m-%d %H:%M"),
            ])
            item.setData(0, Qt.ItemDataRole.UserRole, str(r.path))
            item.setToolTip(0, str(r.path))
            self.runs.addTopLevelItem(item)
        for c in range(self.runs.columnCount()):
            self.runs.resizeColumnToContents(c)
        self._update_buttons()

    @staticmethod
    def _last_metric(run: RunInfo, key: str) -> float | None:
        import csv

        if not run.metrics_path.is_file():
            return None
        try:
            with open(run.metrics_path, newline="", encoding="utf-8") as f:
                vals = [row.get(key) for row in csv.DictReader(f)]
            vals = [float(v) for v in vals if v not in (None, "")]
        except (OSError, ValueError):
            return None
        return vals[-1] if vals else None

    def selected_run(self) -> Path | None:
        items = self.runs.selectedItems()
        return Path(items[0].data(0, Qt.ItemDataRole.UserRole)) if items else None

    def open_run(self, path: Path) -> None:
        """Show a past run's curves (metrics.csv), samples (samples/*.png) and config."""
        path = Path(path)
        metrics = path / "metrics.csv"
        self.curves.clear()
        if metrics.is_file():
            self.curves.load_metrics_csv(metrics)
        files = sorted((path / "samples").glob("*.png"), key=lambda p: p.stat().st_mtime)
        self.sample_files.blockSignals(True)
        self.sample_files.clear()
        for f in files:
            self.sample_files.addItem(self._sample_title(f), str(f))
        self.sample_files.setCurrentIndex(len(files) - 1)
        self.sample_files.blockSignals(False)
        self.sample_files.setVisible(bool(files))
        if files:
            self.samples.set_image_file(files[-1], caption=f"{path.name} · {self._sample_title(files[-1])}")
        else:
            self.samples.clear()
        self.log.appendPlainText(f"— Opened run {path}")
        cfg = path / "config.json"
        if cfg.is_file():
            try:
                c = json.loads(cfg.read_text(encoding="utf-8"))
                stages = ", ".join(f"{s['name']}×{s['epochs']}" for s in c.get("stages", []))
                self.log.appendPlainText(
                    f"  recipe {c.get('recipe')}, model {c.get('arch')}, size {c.get('size')}, "
                    f"batch {c.get('batch_size')}, loss {c.get('loss')}, stages {stages}"
                )
            except (OSError, ValueError, KeyError, TypeError):
                pass
        self.status_label.setText(f"Showing run {path.name}.")
        self.tabs.setCurrentWidget(self.curves)

    def open_selected_run(self) -> None:
        p = self.selected_run()
        if p is not None and not self.is_busy():
            self.open_run(p)

    @staticmethod
    def _sample_title(path: Path) -> str:
        """"gan_epoch004.png" -> "gan · epoch 5: input | prediction | target"."""
        stage, sep, num = Path(path).stem.rpartition("_epoch")
        if sep and num.isdigit():
            return f"{stage} · epoch {int(num) + 1}: input | prediction | target"
        return Path(path).stem

    def _sample_file_chosen(self, index: int) -> None:
        f = self.sample_files.itemData(index)
        if f:
            self.samples.set_image_file(f, caption=self._sample_title(Path(f)))

    def _show_run_folder(self) -> None:
        p = self.selected_run() or self.run_dir or self.ctx.project.runs_dir
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(p)))

    # ------------------------------------------------------------------ building the config
    def build_config(self, out: Path | None = None):
        """The TrainConfig the widgets describe (TrainingError if something is off)."""
        cfg = train_recipes.get_recipe(self.recipe_name())
        data = self.dataset_combo.currentData()
        is_wgan = any(st.kind == "wgan" for st in cfg.stages)
        if not data:
            raise TrainingError("No dataset chosen.", hint="Build one in the Data panel first.")
        try:
            lr = float(self.lr_edit.text())
        except ValueError:
            raise TrainingError(f"The learning rate '{self.lr_edit.text()}' is not a number.") from None
        over: dict[str, Any] = {
            "data": str(Path(data) / "hr") if is_wgan else data,
            "lr": lr,
            "device": self.device_combo.currentData(),
            "max_minutes": float(self.max_minutes.value()) or None,
            "steps_per_epoch": self.steps_spin.value() or None,
        }
        if self.size_spin.value() != cfg.size:
            over["size"] = self.size_spin.value()
        if self.bs_spin.value() != cfg.batch_size:
            over["batch_size"] = self.bs_spin.value()
        choice = self.model_combo.currentData()
        start = self.start_key()
        if choice and choice[0] == "panel" and start in ("scratch", "imagenet"):
            over["arch"] = choice[1]
            over["arch_options"] = {k: v for k, v in choice[2].items() if k not in ("scale", "pretrained")}
        if out is not None:
            over["out"] = str(out)
        cfg = train_recipes.apply_overrides(cfg, **over)
        if not is_wgan:
            cfg.loss = self.loss_combo.currentData()
            self._apply_start(cfg, start)
        keep = []
        for st, row in zip(cfg.stages, self.stage_rows):
            if not row.check.isChecked():
                continue
            if st.trains:
                st.epochs = row.epochs.value()
            keep.append(st)
        if not keep:
            raise TrainingError("Every stage is unticked: nothing to train.")
        cfg.stages = keep
        cfg.validate()
        return cfg

    @staticmethod
    def _apply_start(cfg, start: str) -> None:
        """Set ``init`` / ``pretrained`` as the CLI's --init and --no-pretrained would."""
        feature = cfg.loss == "feature" or cfg.gan_pixel_loss == "feature"
        if start == "imagenet":
            cfg.init, cfg.pretrained = None, True
            cfg.arch_options.pop("pretrained", None)
            return
        # the feature loss keeps its ImageNet VGG (a random one measures nothing); the encoder does not
        cfg.pretrained = feature
        if start == "scratch":
            cfg.init = None
            if has_imagenet_encoder(cfg.arch):
                cfg.arch_options["pretrained"] = False
        else:
            cfg.init = start  # "starter" or a checkpoint path: its architecture replaces the recipe's

    # ------------------------------------------------------------------ run control
    def start(self) -> None:
        if self.is_busy():
            return
        try:
            out = self.ctx.project.new_run_dir(self.recipe_name())
            cfg = self.build_config(out)
        except Exception as exc:  # noqa: BLE001 - shown in the one error dialog
            show_error(self, exc, context="Training cannot start")
            return
        self.save_settings()
        self.curves.clear()
        self.samples.clear()
        self.sample_files.setVisible(False)
        self.log.appendPlainText(f"— Starting {cfg.recipe} ({cfg.arch}) in {out}")
        self._launch(cfg, resume=False)

    def _launch(self, cfg, *, resume: bool) -> None:
        self.run_dir = Path(cfg.out)
        self.resumable_dir = None
        self._t_start = time.perf_counter()
        w = self.ctx.start_worker(run_training, cfg, resume=resume)
        self.worker = w
        w.event.connect(self._on_event)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.done.connect(self._on_done)
        self.status_label.setText("Starting… (building the model and loading data)")
        self._last_batch = None
        self._set_paused(False)
        self.progress.setRange(0, 0)
        self.progress.setFormat("%p%")
        self.progress.setVisible(True)
        self.tabs.setCurrentWidget(self.curves)
        self._update_buttons()
        self.run_started.emit(self.run_dir)

    def pause(self) -> None:
        if self.worker is not None and self.worker.is_running() and not self.worker.is_paused():
            self.worker.pause()
            self._set_paused(True)
            self.log.appendPlainText("— Paused")
            self._update_buttons()

    def resume(self) -> None:
        if self.worker is not None and self.worker.is_running():
            if self.worker.is_paused():
                self.worker.resume()
                self._set_paused(False)
                self.status_label.setText("Resumed.")
                self.log.appendPlainText("— Resumed")
                self._update_buttons()
            return
        if self.resumable_dir is not None:
            self.resume_run(self.resumable_dir)

    def resume_run(self, path: Path) -> None:
        """Continue the run in ``path`` from its last checkpoint."""
        from lesson7_studio.core.train import run as run_mod

        if self.is_busy():
            return
        try:
            cfg = run_mod.resume_config(path, device=self.device_combo.currentData())
        except Exception as exc:  # noqa: BLE001
            show_error(self, exc, context="This run cannot be resumed")
            return
        self.curves.clear()
        if (Path(path) / "metrics.csv").is_file():
            self.curves.load_metrics_csv(Path(path) / "metrics.csv")
        self.log.appendPlainText(f"— Resuming {path}")
        self._launch(cfg, resume=True)

    def resume_selected_run(self) -> None:
        p = self.selected_run()
        if p is not None:
            self.resume_run(p)

    def cancel(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.cancel()
            self.status_label.setText("Stopping after the current batch; a checkpoint is kept…")
            self.log.appendPlainText("— Cancel requested")
        if self.lr_worker is not None and self.lr_worker.is_running():
            self.lr_worker.cancel()
        self._update_buttons()

    def find_lr(self) -> None:
        if self.is_busy():
            return
        try:
            cfg = self.build_config(self.ctx.project.runs_dir / ".lr-find")
        except Exception as exc:  # noqa: BLE001
            show_error(self, exc, context="The LR finder cannot start")
            return
        self.lr_plot.start_sweep()
        self.lr_result_label.setText("Sweeping the learning rate… the curve grows as each batch is measured.")
        self.use_lr_button.setEnabled(False)
        self.tabs.setCurrentIndex(2)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        w = self.ctx.start_worker(run_lr_find, cfg, num_it=self.ctx.settings.value("train/lr_find_iters", 100))
        self.lr_worker = w
        w.event.connect(self._on_lr_event)
        w.finished.connect(self._lr_finished)
        w.failed.connect(lambda exc: (self.lr_result_label.setText("The LR finder failed."),
                                      show_error(self, exc, context="The LR finder failed")))
        w.cancelled.connect(lambda: self.lr_result_label.setText("LR finder cancelled."))
        w.done.connect(self._on_done)
        self._update_buttons()

    def _on_lr_event(self, ev) -> None:
        if isinstance(ev, LRFindPoint):
            self.lr_plot.add_point(ev.lr, ev.loss)
            self.progress.setRange(0, max(ev.total, 1))
            self.progress.setValue(ev.done)
            self.progress.setFormat("LR finder %v / %m batches")
            self.status_label.setText(f"LR finder: batch {ev.done} of {ev.total} · lr {format_lr(ev.lr)} · "
                                      f"smoothed loss {ev.loss:.4g}")
        elif isinstance(ev, Log):
            self.log.appendPlainText(ev.message)

    def _lr_finished(self, res) -> None:
        self.last_lr_result = res
        rule = getattr(res, "rule", "valley")
        self.lr_plot.set_data(res.lrs, res.losses, res.suggestion, rule=rule)
        self.lr_result_label.setText(
            f"Suggested lr: <b>{format_lr(res.suggestion)}</b>, marked on the curve. Rule: {rule}. "
            f"(Steepest slope at {format_lr(res.steep)}.)"
        )
        self.use_lr_button.setEnabled(True)
        self.status_label.setText("LR finder done.")

    def use_suggested_lr(self) -> None:
        if self.last_lr_result is not None:
            self.lr_edit.setText(f"{self.last_lr_result.suggestion:.3g}")
            self.ctx.status_message.emit(f"Learning rate set to {self.last_lr_result.suggestion:.3g}")

    # ------------------------------------------------------------------ events
    def _on_event(self, ev) -> None:
        if isinstance(ev, (StageStart, BatchEnd, EpochEnd)):
            self.curves.handle_event(ev)
        if isinstance(ev, BatchEnd):
            self._last_batch = ev
            now = time.perf_counter()
            if now - self._last_status >= STATUS_EVERY_S or ev.iteration + 1 == ev.n_iter:
                self._last_status = now
                self._show_batch(ev)
        elif isinstance(ev, StageStart):
            self._stage_text = f"Stage {ev.index + 1}/{ev.total} '{ev.name}'"
            self._stage_epochs = ev.epochs
            self.status_label.setText(self._stage_text + (" · starting" if ev.epochs else ""))
            self.log.appendPlainText(f"— Stage {ev.index + 1}/{ev.total}: {ev.name} ({ev.epochs} epochs)")
        elif isinstance(ev, EpochEnd):
            m = "  ".join(f"{k} {v:.4g}" for k, v in ev.metrics.items() if isinstance(v, (int, float)))
            self.log.appendPlainText(f"[{ev.stage}] epoch {ev.epoch + 1}/{ev.n_epochs}  {m}  ({ev.seconds:.1f} s)")
        elif isinstance(ev, SampleImages):
            self.samples.set_rows(ev.rows, caption=f"{ev.stage} · epoch {ev.epoch + 1}")
        elif isinstance(ev, CheckpointSaved):
            self.log.appendPlainText(f"checkpoint ({ev.reason}): {ev.path}")
        elif isinstance(ev, Progress):
            if getattr(self, "_last_batch", None) is None:  # before the first batch: its own count
                self.progress.setRange(0, max(ev.total, 1))
                self.progress.setValue(ev.done)
                self.progress.setFormat("%v / %m")
            self.status_label.setText(f"{self._stage_text} · {ev.message} {ev.done}/{ev.total}")
        elif isinstance(ev, Log):
            self.log.appendPlainText(ev.message)
        elif isinstance(ev, Finished):
            self.log.appendPlainText(f"— Finished: {json.dumps(ev.summary, default=str)}")

    def _show_batch(self, ev: BatchEnd) -> None:
        """The overall bar (steps of the whole run, ETA) and the status line."""
        total = ev.total_steps or 0
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(ev.step, total))
        else:  # no plan (an old core): this epoch's batches
            self.progress.setRange(0, max(ev.n_iter, 1))
            self.progress.setValue(ev.iteration + 1)
        paused = self.worker is not None and self.worker.is_paused()  # a batch that ends after Pause
        self.progress.setFormat(self._progress_text(ev, paused))
        if paused:
            return
        epochs = getattr(self, "_stage_epochs", 0)
        self.status_label.setText(
            f"{self._stage_text} · epoch {ev.epoch + 1}" + (f"/{epochs}" if epochs else "")
            + f" · batch {ev.iteration + 1}/{ev.n_iter} · loss {ev.smooth_loss:.4g} · lr {format_lr(ev.lr)}"
            + f" · {format_duration(ev.elapsed_s) if ev.elapsed_s else self._elapsed()} elapsed"
        )

    def _progress_text(self, ev: BatchEnd | None, paused: bool = False) -> str:
        if ev is None:
            return "Paused" if paused else "%p%"
        head = "Paused · " if paused else ""
        if not ev.total_steps:
            return f"{head}%v / %m batches"
        eta = "" if paused else f" · ETA {format_duration(ev.eta_s)}" if ev.eta_s is not None else " · ETA …"
        return f"{head}%p% · step {min(ev.step, ev.total_steps)} of {ev.total_steps}{eta}"

    def _set_paused(self, paused: bool) -> None:
        """The visible paused state: a badge, the bar's text, the status line."""
        self.paused_badge.setVisible(paused)
        ev = getattr(self, "_last_batch", None)
        self.progress.setFormat(self._progress_text(ev, paused))
        if paused:
            where = (f" at step {ev.step} of {ev.total_steps}" if ev is not None and ev.total_steps else "")
            self.status_label.setText(f"Paused{where} (after the current batch; the clock is stopped). "
                                      "Resume to go on, Cancel to stop with a checkpoint.")

    def is_paused(self) -> bool:
        return self.worker is not None and self.worker.is_running() and self.worker.is_paused()

    def _elapsed(self) -> str:
        s = int(time.perf_counter() - self._t_start)
        return f"{s // 60}:{s % 60:02d}"

    def _on_finished(self, result) -> None:
        self.last_result = result
        self.curves.flush()
        metrics = getattr(result, "metrics", {}) or {}
        psnr = metrics.get("psnr")
        stopped = getattr(result, "stopped", "")
        if stopped:
            self.resumable_dir = self.run_dir
            self.status_label.setText(f"Stopped ({stopped}) after {self._elapsed()}; Resume continues it.")
        else:
            self.status_label.setText(
                f"Finished in {self._elapsed()}" + (f" · PSNR {psnr:.2f} dB" if psnr is not None else "")
                + (" · model saved" if getattr(result, "model_path", None) else "")
            )
        self.ctx.runs_changed.emit()
        self.ctx.models_changed.emit()
        self.run_ended.emit("finished")

    def _on_failed(self, exc) -> None:
        self.status_label.setText("Training failed.")
        self.log.appendPlainText(f"— Failed: {exc}")
        self.ctx.runs_changed.emit()
        self.run_ended.emit("failed")
        show_error(self, exc, context="Training failed")

    def _on_cancelled(self) -> None:
        self.resumable_dir = self.run_dir
        self.status_label.setText("Cancelled. A checkpoint was kept: Resume continues the run.")
        self.ctx.runs_changed.emit()
        self.run_ended.emit("cancelled")

    def _on_done(self) -> None:
        self._set_paused(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.progress.setVisible(False)
        self._update_buttons()

    def _update_buttons(self, *_args) -> None:
        running = self.worker is not None and self.worker.is_running()
        paused = running and self.worker.is_paused()
        lr_running = self.lr_worker is not None and self.lr_worker.is_running()
        has_data = bool(self.dataset_combo.currentData())
        self.start_button.setEnabled(not running and not lr_running and has_data)
        self.lr_button.setEnabled(not running and not lr_running and has_data)
        self.pause_button.setEnabled(running and not paused)
        self.resume_button.setEnabled(paused or (not running and not lr_running and self.resumable_dir is not None))
        self.cancel_button.setEnabled(running or lr_running)
        sel = self.selected_run()
        self.open_run_button.setEnabled(sel is not None and not running)
        self.resume_run_button.setEnabled(sel is not None and not running and not lr_running)
        for w in (self.recipe_combo, self.dataset_combo, self.device_combo):
            w.setEnabled(not running)
        from_weights = self.start_key() not in ("scratch", "imagenet")  # the checkpoint names the model
        self.model_combo.setEnabled(not running and self._restorer_recipe and not from_weights)
        self.start_combo.setEnabled(not running and self._restorer_recipe)

    # ------------------------------------------------------------------ panel protocol
    def on_shown(self) -> None:
        self.refresh_datasets()

    def is_busy(self) -> bool:
        return any(w is not None and w.is_running() for w in (self.worker, self.lr_worker))

    def shutdown(self, wait_ms: int = 120000) -> None:
        """Cancel a running run (it writes a resumable checkpoint) and wait for it."""
        for w in (self.worker, self.lr_worker):
            if w is not None and w.is_running():
                w.cancel()
        for w in (self.worker, self.lr_worker):
            if w is not None:
                w.wait(wait_ms)
