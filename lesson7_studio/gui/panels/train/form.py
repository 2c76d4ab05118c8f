"""The Train panel's form: recipe, dataset, where the generator starts from, model, device,
hyper-parameters and the recipe's stages; it builds the TrainConfig they describe.

The recipe logic (head learning rate, start-from keys, overrides) is core's
(:mod:`lesson7_studio.core.train.recipes`); this form only shows and collects it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLineEdit,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core.errors import TrainingError
from lesson7_studio.core.train import recipes as train_recipes

from ...widgets.common import label
from ...widgets.run_control import device_choices
from .start_from import StartFrom

LOSSES = ("mse", "l1", "feature")
GAN_STAGES_TITLE = "Stages (NoGAN: generator → predictions → critic → GAN)"


FEW_PAIRS = 20  # fewer training pairs than this: the validation curve rises in quick (a 3-pair demo: -0.2 dB)
FEW_PAIRS_ADVICE = 30  # what benchmarks/bench_quick.py measures quick on


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


def _spin(lo: int, hi: int, *, suffix: str = "", special: str = "", tip: str = "", step: int = 1) -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    if suffix:
        s.setSuffix(suffix)
    if special:
        s.setSpecialValueText(special)
    if tip:
        s.setToolTip(tip)
    s.setMaximumWidth(140)
    return s


class TrainForm(QWidget):
    """Setup, hyper-parameters and stages of a training run."""

    changed = Signal()  # something that enables or disables Start changed

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.stage_rows: list[StageRow] = []
        self._dataset_infos: dict[str, str] = {}
        self._restorer_recipe = True
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 6, 0)
        lay.addWidget(self._build_setup())
        lay.addWidget(self._build_hyper())
        self.stages_box = QGroupBox(GAN_STAGES_TITLE)
        self.stages_grid = QGridLayout(self.stages_box)
        self.stages_grid.setColumnStretch(1, 1)
        lay.addWidget(self.stages_box)
        lay.addStretch(1)
        self.recipe_combo.currentIndexChanged.connect(self._recipe_chosen)
        recipe = ctx.settings.value("train/recipe", "quick")
        idx = self.recipe_combo.findData(recipe)
        self.recipe_combo.setCurrentIndex(idx if idx >= 0 else 0)
        self._recipe_chosen()
        self._restore_hyper()

    def _build_setup(self) -> QGroupBox:
        setup = self.setup_box = QGroupBox("Setup")
        sf = QFormLayout(setup)
        self.recipe_combo = self._combo("trainRecipe")
        for name in train_recipes.recipe_names():
            self.recipe_combo.addItem(name, name)
        self.recipe_desc = label("", "hint", wrap=True)
        self.dataset_combo = self._combo("trainDataset")
        self.dataset_info = label("", "hint", wrap=True)
        self.dataset_info.setObjectName("trainDatasetInfo")
        self.dataset_combo.currentIndexChanged.connect(self._dataset_chosen)
        self.model_combo = self._combo("trainModel")
        self.model_combo.setToolTip("The recipe's own network, or the one chosen in the Model panel")
        self.start_from = StartFrom(self.ctx, self._combo("trainStartFrom"), self._generator_arch)
        self.start_from.changed.connect(self.changed.emit)
        self.start_from.changed.connect(self.relayout)  # its hint's text changes with the choice
        self.model_combo.currentIndexChanged.connect(lambda *_: self.start_from.fill(self.recipe()))
        self.device_combo = QComboBox()
        for d in device_choices(self.ctx.device):
            self.device_combo.addItem(d, d)
        dev = self.ctx.settings.value("train/device", "auto")
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(dev)))
        sf.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        sf.addRow("Recipe", self.recipe_combo)
        sf.addRow(self.recipe_desc)
        sf.addRow("Dataset", self.dataset_combo)
        sf.addRow(self.dataset_info)
        sf.addRow("Start from", self.start_from.combo)
        sf.addRow(self.start_from.hint)
        sf.addRow("Model", self.model_combo)
        sf.addRow("Device", self.device_combo)
        return setup

    def _combo(self, name: str) -> QComboBox:
        c = QComboBox()
        c.setObjectName(name)
        c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        c.setMinimumContentsLength(12)
        c.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        return c

    def _build_hyper(self) -> QGroupBox:
        hyper = QGroupBox("Hyper-parameters")
        hf = QFormLayout(hyper)
        self.lr_edit = QLineEdit()
        self.lr_edit.setObjectName("lrEdit")
        self.lr_edit.setToolTip("Head learning rate of the first training stage; the other stages keep "
                                "the recipe's ratios")
        self.lr_edit.setMaximumWidth(140)
        self.bs_spin = _spin(1, 4096)
        self.size_spin = _spin(8, 4096, suffix=" px", step=16, tip="Crop size of the target (high-res) images")
        self.loss_combo = QComboBox()
        for l_ in LOSSES:
            self.loss_combo.addItem(l_, l_)
        self.loss_combo.setToolTip("mse / l1: pixel losses; feature: the lesson's VGG16 perceptual loss "
                                   "(needs the VGG16_bn weights)")
        self.max_minutes = _spin(0, 100000, suffix=" min", special="no limit",
                                 tip="Stop (resumable) after this much training time")
        self.steps_spin = _spin(0, 1000000, special="all",
                                tip="Training batches per epoch: fewer than the data holds cuts the epoch; "
                                    "more repeats a small dataset with new random crops (all = one pass)")
        self.ema_spin = QDoubleSpinBox()
        self.ema_spin.setObjectName("emaSpin")
        self.ema_spin.setRange(0.0, 0.9999)
        self.ema_spin.setDecimals(4)
        self.ema_spin.setSingleStep(0.001)
        self.ema_spin.setSpecialValueText("off")
        self.ema_spin.setMaximumWidth(140)
        self.ema_spin.setToolTip("Keep an exponential moving average of the weights (its decay: 0.99 averages "
                                 "about the last 100 steps). The validation figures, the samples and the saved "
                                 "model are then the average, which is usually better than the last weights.")
        self.keep_best_check = QCheckBox("best weights")
        self.keep_best_check.setObjectName("keepBestCheck")
        self.keep_best_check.setToolTip("Save as the model the weights that scored best on the validation photos "
                                        "(the starting ones included) rather than the last: a fine-tune then never "
                                        "hands back a model worse than the one it started from")
        for text, w in (("Learning rate", self.lr_edit), ("Batch size", self.bs_spin), ("Image size", self.size_spin),
                        ("Loss", self.loss_combo), ("Time limit", self.max_minutes),
                        ("Batches/epoch", self.steps_spin), ("Weight average", self.ema_spin)):
            hf.addRow(text, w)
        hf.addRow("Keep", self.keep_best_check)
        return hyper

    # ------------------------------------------------------------------ recipe
    def recipe_name(self) -> str:
        return self.recipe_combo.currentData()

    def recipe(self):
        """A fresh copy of the chosen recipe."""
        return train_recipes.get_recipe(self.recipe_name())

    def _recipe_chosen(self, *_args) -> None:
        cfg = self.recipe()
        self.recipe_desc.setText(cfg.description)
        self.lr_edit.setText(f"{train_recipes.head_lr(cfg):.3g}")
        self.bs_spin.setValue(cfg.batch_size)
        self.size_spin.setValue(cfg.size)
        self.loss_combo.setEnabled(not train_recipes.is_wgan(cfg))
        if cfg.loss in LOSSES:
            self.loss_combo.setCurrentIndex(self.loss_combo.findData(cfg.loss))
        self.steps_spin.setValue(cfg.steps_per_epoch or 0)
        self.max_minutes.setValue(int(cfg.max_minutes or 0))
        self.ema_spin.setValue(cfg.ema)
        self.ema_spin.setEnabled(any(st.kind == "restore" for st in cfg.stages))
        self.keep_best_check.setChecked(cfg.keep_best)
        self.keep_best_check.setEnabled(not train_recipes.is_wgan(cfg))
        self._fill_stages(cfg)
        self._fill_models(cfg)
        self.start_from.fill(cfg, train_recipes.default_start(cfg))
        self.relayout()

    def relayout(self) -> None:
        """Give each word-wrapped hint the height its text needs at its width. In a QFormLayout
        inside a scroll area they otherwise keep the height of their first text, and a longer one
        (after a recipe switch) runs under the next row."""
        for hint in (self.recipe_desc, self.dataset_info, self.start_from.hint):
            w = hint.width() if hint.width() > 10 else max(50, self.setup_box.width() - 24)
            hint.setMinimumHeight(hint.heightForWidth(w) if hint.text() else 0)
        self.setup_box.layout().activate()  # now, not at the next event loop pass

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.relayout()

    def _fill_stages(self, cfg) -> None:
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
        self.stages_box.setTitle(GAN_STAGES_TITLE if gan else "Stages")

    def _fill_models(self, cfg) -> None:
        current = self.model_combo.currentData()
        self.model_combo.clear()
        self.model_combo.addItem(f"Recipe default: {cfg.arch}", ("recipe", cfg.arch, {}))
        restorer = not train_recipes.is_wgan(cfg)
        name, opts = self.ctx.model_choice
        if restorer and name:
            self.model_combo.addItem(f"Model panel: {name}", ("panel", name, dict(opts)))
            if (current is not None and current[0] == "panel") or self.ctx.settings.value(
                "train/use_panel_model", False
            ):
                self.model_combo.setCurrentIndex(1)
        self._restorer_recipe = restorer
        self.model_combo.setEnabled(restorer)

    def model_chosen(self, _name: str, _opts: dict) -> None:
        """The Model panel chose a network: offer it and select it."""
        self._fill_models(self.recipe())
        if self.model_combo.count() > 1:
            self.model_combo.setCurrentIndex(1)

    def _generator_arch(self) -> str:
        choice = self.model_combo.currentData()
        return choice[1] if choice else self.recipe().arch

    def start_key(self) -> str:
        return self.start_from.key()

    def set_stage_epochs(self, epochs: int) -> None:
        for r in self.stage_rows:
            if r.epochs.isEnabled():
                r.epochs.setValue(epochs)

    # ------------------------------------------------------------------ datasets
    def refresh_datasets(self) -> None:
        current = self.dataset_combo.currentData()
        want = Path(current).name if current else self.ctx.settings.value("train/dataset", "")
        self.dataset_combo.clear()
        self.dataset_combo.blockSignals(True)
        self._dataset_infos = {}
        for ds in self.ctx.project.list_datasets():
            scale = f", ×{ds.scale}" if ds.scale and ds.scale > 1 else ""
            info = f"{ds.n_train} training / {ds.n_valid} validation pairs{scale}"
            if 0 < ds.n_train < FEW_PAIRS:
                info += (f" — few photos: a model learns them by heart. Build one of {FEW_PAIRS_ADVICE}+ photos "
                         "in the Data panel for a result on other photos.")
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
        self.dataset_info.setText(self._dataset_infos.get(ds, "") if ds else "")
        self.dataset_info.setVisible(bool(ds))
        self.relayout()
        self.changed.emit()

    def has_dataset(self) -> bool:
        return bool(self.dataset_combo.currentData())

    # ------------------------------------------------------------------ settings
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
        if "ema" in h:
            self.ema_spin.setValue(float(h["ema"]))
        if "keep_best" in h:
            self.keep_best_check.setChecked(bool(h["keep_best"]))
        if h.get("start_from"):
            self.start_from.fill(self.recipe(), str(h["start_from"]))
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
            "ema": self.ema_spin.value(),
            "keep_best": self.keep_best_check.isChecked(),
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

    # ------------------------------------------------------------------ the config
    def build_config(self, out: Path | None = None):
        """The TrainConfig the widgets describe (TrainingError if something is off)."""
        cfg = self.recipe()
        data = self.dataset_combo.currentData()
        is_wgan = train_recipes.is_wgan(cfg)
        if not data:
            raise TrainingError("No dataset chosen.", hint="Build one in the Data panel first.")
        try:
            lr = float(self.lr_edit.text())
        except ValueError:
            raise TrainingError(f"The learning rate '{self.lr_edit.text()}' is not a number.") from None
        over: dict[str, Any] = {"data": str(Path(data) / "hr") if is_wgan else data, "lr": lr,
                                "device": self.device_combo.currentData()}
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
        # "all" and "no limit" are choices too: None replaces the recipe's own value
        cfg.steps_per_epoch = self.steps_spin.value() or None
        cfg.max_minutes = float(self.max_minutes.value()) or None
        cfg.ema = round(self.ema_spin.value(), 4) if self.ema_spin.isEnabled() else cfg.ema
        cfg.keep_best = self.keep_best_check.isChecked() if self.keep_best_check.isEnabled() else cfg.keep_best
        if not is_wgan:
            cfg.loss = self.loss_combo.currentData()
            train_recipes.apply_start(cfg, start)
        cfg.stages = self._chosen_stages(cfg)
        cfg.validate()
        return cfg

    def _chosen_stages(self, cfg) -> list:
        keep = []
        for st, row in zip(cfg.stages, self.stage_rows):
            if not row.check.isChecked():
                continue
            if st.trains:
                st.epochs = row.epochs.value()
            keep.append(st)
        if not keep:
            raise TrainingError("Every stage is unticked: nothing to train.")
        return keep

    def set_running(self, running: bool) -> None:
        """Lock what cannot change while a job runs."""
        for w in (self.recipe_combo, self.dataset_combo, self.device_combo):
            w.setEnabled(not running)
        from_weights = self.start_key() not in ("scratch", "imagenet")  # the checkpoint names the model
        self.model_combo.setEnabled(not running and self._restorer_recipe and not from_weights)
        self.start_from.combo.setEnabled(not running and self._restorer_recipe)
