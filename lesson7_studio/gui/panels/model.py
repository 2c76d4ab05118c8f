"""Model panel: the registry's models, their options as widgets, size and weights status."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..context import AppContext
from ..widgets.common import button, debouncer, header, human_bytes, human_count, label, panel_layout, set_role
from ..widgets.forms import OptionsForm, spec_from_option

KIND_TITLES = {
    "restorer": "Image restorers",
    "critic": "Critics (GAN)",
    "generator": "Generators (WGAN)",
    "classifier": "Classifiers (MNIST)",
    "language-model": "RNNs (human numbers)",
}
KIND_HINTS = {
    "restorer": "Restorer: degraded photo in, restored photo out. Trainable in the Train panel.",
    "critic": "Critic: scores images as real or generated; trained in GAN stages.",
    "generator": "Generator: noise in, image out (WGAN).",
    "classifier": "Classifier: the lesson's MNIST CNN / ResNet / DenseNet; train and explore it in the "
                  "Lessons panel.",
    "language-model": "Language model: one of the lesson's six human-numbers RNNs; train and explore it "
                      "in the Lessons panel.",
}
DEFAULT_MODEL = "unet-lite"


def _summary():
    """core.models.summary, imported on first use (it needs torch; the panel module does not)."""
    from lesson7_studio.core.models import summary

    return summary


class ModelPanel(QWidget):
    """Pick a registry model and its options; see its size; send it to the Train panel."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._stats_worker = None
        self._weights_worker = None
        self._request = 0
        self.last_stats = None  # core.models.summary.ModelSize of the shown options
        self.last_weights: dict[str, Any] | None = None
        self._catalog = {e.name: e for e in _summary().catalog()}
        lay = panel_layout(self)
        lay.addWidget(header("Model", "Choose the network to train. Options change its size; "
                             "the numbers below update as you edit."))
        self.list = self._build_list()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._build_details())
        split = QSplitter()
        split.addWidget(self.list)
        split.addWidget(scroll)
        split.setStretchFactor(1, 1)
        split.setSizes([220, 800])
        lay.addWidget(split, 1)
        self._debounce = debouncer(self, 150, self._compute)
        name, opts = self._saved_choice()
        ctx.model_choice = (name, opts)
        self._update_chosen_label()
        self.select_model(name)
        if opts:
            self.form.set_values(opts)
            self._options_changed()

    def _build_list(self) -> QListWidget:
        lst = QListWidget()
        lst.setObjectName("modelList")
        lst.setMinimumWidth(180)
        lst.setMaximumWidth(260)
        last_kind = None
        for e in self._catalog.values():
            if e.kind != last_kind:
                head = QListWidgetItem(KIND_TITLES.get(e.kind, e.kind.title()))
                head.setFlags(Qt.ItemFlag.NoItemFlags)
                f = head.font()
                f.setBold(True)
                head.setFont(f)
                lst.addItem(head)
                last_kind = e.kind
            item = QListWidgetItem("   " + e.name + (f"  ({human_count(e.params)})" if e.params is not None else ""))
            item.setData(Qt.ItemDataRole.UserRole, e.name)
            item.setToolTip(e.description)
            lst.addItem(item)
        lst.currentItemChanged.connect(self._selected)
        return lst

    def _build_details(self) -> QWidget:
        self.name_label = label("", "title")
        self.desc_label = label("", "subtitle", wrap=True)
        self.kind_label = label("", "hint")
        self.form = OptionsForm()
        self.form.changed.connect(self._options_changed)
        opt_box = QGroupBox("Options")
        QVBoxLayout(opt_box).addWidget(self.form)
        self.weights_box = QGroupBox("Pretrained weights")
        self.weights_label = label("", "", wrap=True, selectable=True)
        QVBoxLayout(self.weights_box).addWidget(self.weights_label)
        self.reset_button = button("Reset options", tooltip="Back to the registry's defaults")
        self.reset_button.clicked.connect(self.reset_options)
        self.use_button = button("Use for training", "primary", "Train this model in the Train panel")
        self.use_button.clicked.connect(self.use_for_training)
        self.chosen_label = label("", "hint")
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(4, 0, 4, 0)
        title_row = QHBoxLayout()
        title_row.addWidget(self.name_label, 1)
        title_row.addWidget(self.reset_button)
        title_row.addWidget(self.use_button)
        rl.addLayout(title_row)
        rl.addWidget(self.desc_label)
        kind_row = QHBoxLayout()
        kind_row.addWidget(self.kind_label, 1)
        kind_row.addWidget(self.chosen_label)
        rl.addLayout(kind_row)
        rl.addWidget(opt_box)
        rl.addWidget(self._build_size_box())
        rl.addWidget(self.weights_box)
        rl.addStretch(1)
        return right

    def _build_size_box(self) -> QGroupBox:
        size_box = QGroupBox("Size")
        sf = QFormLayout(size_box)
        self.params_label = label("…", "metric")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(16, 4096)
        self.size_spin.setSingleStep(32)
        self.size_spin.setSuffix(" px")
        self.size_spin.setValue(self.ctx.settings.value("model/estimate_size", 256))
        self.size_spin.setToolTip("Output image size (square) for the activation estimate")
        self.size_spin.setMaximumWidth(160)
        self.size_spin.valueChanged.connect(self._options_changed)
        self.memory_label = label("…", "metric", wrap=True)
        self.memory_hint = label("", "hint", wrap=True)
        mem = QWidget()
        ml = QVBoxLayout(mem)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.setSpacing(2)
        ml.addWidget(self.memory_label)
        ml.addWidget(self.memory_hint)
        sf.addRow("Parameters", self.params_label)
        sf.addRow("Image size", self.size_spin)
        sf.addRow("Memory", mem)
        return size_box

    # ------------------------------------------------------------------ state
    def _saved_choice(self) -> tuple[str, dict[str, Any]]:
        name = self.ctx.settings.value("model/name", DEFAULT_MODEL)
        if name not in self._catalog:
            name = DEFAULT_MODEL
        try:
            opts = json.loads(self.ctx.settings.value("model/options", "{}"))
            opts = _summary().resolve_options(name, opts)
        except Exception:  # noqa: BLE001 - stale settings fall back to defaults
            opts = {}
        return name, opts

    def save_settings(self) -> None:
        self.ctx.settings.set_value("model/estimate_size", self.size_spin.value())

    def current_model(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def options(self) -> dict[str, Any]:
        return self.form.values()

    def select_model(self, name: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == name:
                self.list.setCurrentRow(i)
                return

    def _selected(self, item: QListWidgetItem | None, _prev=None) -> None:
        if item is None:
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        if name is None:
            return
        e = self._catalog[name]
        self.name_label.setText(name)
        self.desc_label.setText(e.description)
        self.kind_label.setText(KIND_HINTS.get(e.kind, e.kind))
        self.form.set_specs([spec_from_option(o) for o in e.options])
        self.use_button.setEnabled(e.kind == "restorer")
        self._options_changed()

    def reset_options(self) -> None:
        name = self.current_model()
        if name:
            self.form.set_values(self._catalog[name].defaults())
            self._options_changed()

    def use_for_training(self) -> None:
        name = self.current_model()
        if not name:
            return
        opts = self.options()
        self.ctx.settings.set_value("model/name", name)
        self.ctx.settings.set_value("model/options", json.dumps(opts))
        self.ctx.set_model_choice(name, opts)
        self._update_chosen_label()
        self.ctx.status_message.emit(f"The Train panel will train {name}.")

    def _update_chosen_label(self) -> None:
        name, _ = self.ctx.model_choice
        self.chosen_label.setText(f"Training uses: <b>{name}</b>")

    # ------------------------------------------------------------------ numbers
    def _options_changed(self) -> None:
        self.params_label.setText("…")
        self.memory_label.setText("…")
        self._debounce.start()

    def _compute(self) -> None:
        name = self.current_model()
        if not name:
            return
        try:
            opts = _summary().resolve_options(name, self.options())
        except Exception as exc:  # noqa: BLE001 - an invalid option value is shown, not raised
            self.params_label.setText("—")
            self.memory_label.setText(str(exc))
            return
        self._request += 1
        req, size = self._request, self.size_spin.value()
        summary = _summary()
        w = self.ctx.start_worker(summary.estimate, name, opts, size)
        w.finished.connect(lambda r, req=req: self._show_stats(req, r))
        w.failed.connect(lambda exc, req=req: self._show_stats(req, None, exc))
        self._stats_worker = w
        if "pretrained" in opts:
            ww = self.ctx.start_worker(summary.weights_report, name, opts)
            ww.finished.connect(lambda r, req=req: self._show_weights(req, r))
            ww.failed.connect(lambda exc, req=req: self._show_weights(req, None, exc))
            self._weights_worker = ww
        else:
            self._show_weights(req, None)

    def _show_stats(self, req: int, r, exc: BaseException | None = None) -> None:
        if req != self._request:
            return
        self.last_stats = r
        if r is None:
            self.params_label.setText("—")
            self.memory_label.setText(f"Cannot build this model: {exc}")
            return
        self.params_label.setText(f"{human_count(r.params)} ({r.params:,})")
        w = r.weights_bytes
        if r.act_bytes is None:
            self.memory_label.setText(human_bytes(w))
            detail = f"Weights {human_bytes(w)}; no activation estimate for this model."
        else:
            self.memory_label.setText(human_bytes(w + r.act_bytes))
            detail = f"Weights {human_bytes(w)} + activations {human_bytes(r.act_bytes)} for {r.per}. "
        self.memory_hint.setText(
            detail + "Training needs about 4× the weights (gradients and Adam state) plus the "
            "activations times the batch size."
        )

    def _show_weights(self, req: int, r: dict | None, exc: BaseException | None = None) -> None:
        if req != self._request:
            return
        self.last_weights = r
        if r is None and exc is None:
            self.weights_box.setVisible(False)
            return
        self.weights_box.setVisible(True)
        if r is None:
            set_role(self.weights_label, "error")
            self.weights_label.setText(f"Cannot check the weights: {exc}")
            return
        off = "" if r["wanted"] else "<br><i>'Pretrained' is off: the encoder starts from random weights.</i>"
        if r["status"] == "found":
            set_role(self.weights_label, "ok")
            text = f"✔ Found: {r['file']} in {r['dir']}."
        elif r["status"] == "download":
            set_role(self.weights_label, "warn")
            text = (f"Will download {r['file']} ({r['arch']} ImageNet weights) into {r['dir']} "
                    "when training starts.")
        else:
            set_role(self.weights_label, "warn")
            text = (f"Not available offline: {r['file']} is not in {r['dir']}.<br>"
                    f"To use it, download {r['url']} on a connected machine and put it in that folder, "
                    "or untick 'Pretrained' to train from scratch.")
        self.weights_label.setText(text + off)

    # ------------------------------------------------------------------ panel protocol
    def is_busy(self) -> bool:
        return False

    def shutdown(self) -> None:
        self._debounce.stop()
        for w in (self._stats_worker, self._weights_worker):
            if w is not None and w.is_running():
                w.cancel()
                w.wait(5000)
