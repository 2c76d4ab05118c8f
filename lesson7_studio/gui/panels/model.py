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

from lesson7_studio.core import models

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
LESSON_KINDS = ("classifier", "language-model")  # small enough to list with their parameter counts


def estimate(name: str, options: dict[str, Any], size: int) -> dict[str, Any]:
    """Parameters and activation memory of ``name`` for one ``size`` x ``size`` output image.

    Built on the "meta" device: shapes only, no memory, no weights loaded. Activations are
    the outputs of every leaf module (what training keeps for the backward pass), float32.
    """
    import torch

    opts = dict(options)
    if "pretrained" in opts:
        opts["pretrained"] = False
    with torch.device("meta"):
        net = models.create(name, **opts)
    info = models.describe(name, model=net, **opts)
    if info.kind == "generator":
        x = torch.empty(1, info.in_channels, 1, 1, device="meta")
    elif info.kind == "language-model":  # token ids: two rows of the lesson's bptt (batch norm needs two)
        x = torch.zeros(2, 3 if name == "rnn-model0" else 20, dtype=torch.long, device="meta")
    elif info.kind == "classifier":  # the lesson's nets take 28x28 digits; two, for batch norm at 1x1
        x = torch.empty(2, info.in_channels, 28, 28, device="meta")
    else:
        side = max(size // max(info.model_scale, 1), 1)
        m = max(info.size_multiple, 1)
        side = max(m, (side + m - 1) // m * m)
        x = torch.empty(1, info.in_channels, side, side, device="meta")
    total = [0]

    def hook(_m, _i, out):
        if isinstance(out, torch.Tensor):
            total[0] += out.numel()

    hooks = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            net(x)
        act = total[0] * 4 // x.shape[0]
    except Exception:  # noqa: BLE001 - some layers refuse meta tensors: no estimate then
        act = None
    finally:
        for h in hooks:
            h.remove()
    return {"params": info.params, "weights_bytes": info.params * 4, "act_bytes": act, "info": info}


def weights_report(name: str, options: dict[str, Any]) -> dict[str, Any] | None:
    """Pretrained weights status for a model with a ``pretrained`` option (may touch the network)."""
    from lesson7_studio.core import weights

    arch = name.removeprefix("unet-")
    if "pretrained" not in options or arch not in weights.ARCHS:
        return None
    return {
        "arch": arch,
        "status": weights.weights_status(arch),
        "file": weights.weights_filename(arch),
        "path": str(weights.weights_path(arch)),
        "dir": str(weights.weights_dir()),
        "url": weights.weights_url(arch),
        "wanted": bool(options.get("pretrained")),
    }


class ModelPanel(QWidget):
    """Pick a registry model and its options; see its size; send it to the Train panel."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._stats_worker = None
        self._weights_worker = None
        self._request = 0
        self.last_stats: dict[str, Any] | None = None
        self.last_weights: dict[str, Any] | None = None

        lay = panel_layout(self)
        lay.addWidget(header("Model", "Choose the network to train. Options change its size; "
                             "the numbers below update as you edit."))

        self.list = QListWidget()
        self.list.setObjectName("modelList")
        self.list.setMinimumWidth(180)
        self.list.setMaximumWidth(260)
        kinds = list(KIND_TITLES)
        order = models.names("restorer") + sorted(
            (n for n in models.names() if n not in models.names("restorer")),
            key=lambda n: kinds.index(models.registry.entry(n).kind) if models.registry.entry(n).kind in kinds else 99,
        )
        last_kind = None
        for n in order:
            kind = models.registry.entry(n).kind
            if kind != last_kind:
                head = QListWidgetItem(KIND_TITLES.get(kind, kind.title()))
                head.setFlags(Qt.ItemFlag.NoItemFlags)
                f = head.font()
                f.setBold(True)
                head.setFont(f)
                self.list.addItem(head)
                last_kind = kind
            text = "   " + n
            if kind in LESSON_KINDS:
                text += f"  ({human_count(models.describe(n).params)})"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, n)
            item.setToolTip(models.registry.entry(n).description)
            self.list.addItem(item)
        self.list.currentItemChanged.connect(self._selected)

        # right side
        self.name_label = label("", "title")
        self.desc_label = label("", "subtitle", wrap=True)
        self.kind_label = label("", "hint")
        self.form = OptionsForm()
        self.form.changed.connect(self._options_changed)
        opt_box = QGroupBox("Options")
        ob = QVBoxLayout(opt_box)
        ob.addWidget(self.form)

        size_box = QGroupBox("Size")
        sf = QFormLayout(size_box)
        self.params_label = label("…", "metric")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(16, 4096)
        self.size_spin.setSingleStep(32)
        self.size_spin.setSuffix(" px")
        self.size_spin.setValue(ctx.settings.value("model/estimate_size", 256))
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

        self.weights_box = QGroupBox("Pretrained weights")
        wb = QVBoxLayout(self.weights_box)
        self.weights_label = label("", "", wrap=True, selectable=True)
        wb.addWidget(self.weights_label)

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
        rl.addWidget(size_box)
        rl.addWidget(self.weights_box)
        rl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(right)

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

    # ------------------------------------------------------------------ state
    def _saved_choice(self) -> tuple[str, dict[str, Any]]:
        name = self.ctx.settings.value("model/name", "unet-lite")
        if name not in models.names():
            name = "unet-lite"
        try:
            opts = json.loads(self.ctx.settings.value("model/options", "{}"))
            opts = models.resolve_options(name, **opts)
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
        e = models.registry.entry(name)
        self.name_label.setText(name)
        self.desc_label.setText(e.description)
        kind_hint = {
            "restorer": "Restorer: degraded photo in, restored photo out. Trainable in the Train panel.",
            "critic": "Critic: scores images as real or generated; trained in GAN stages.",
            "generator": "Generator: noise in, image out (WGAN).",
            "classifier": "Classifier: the lesson's MNIST CNN / ResNet / DenseNet; train and explore it in the "
                          "Lessons panel.",
            "language-model": "Language model: one of the lesson's six human-numbers RNNs; train and explore it "
                              "in the Lessons panel.",
        }
        self.kind_label.setText(kind_hint.get(e.kind, e.kind))
        self.form.set_specs([spec_from_option(o) for o in e.options])
        self.use_button.setEnabled(e.kind == "restorer")
        self._options_changed()

    def reset_options(self) -> None:
        name = self.current_model()
        if name:
            self.form.set_values({o.name: o.default for o in models.options_of(name)})
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
            opts = models.resolve_options(name, **self.options())
        except Exception as exc:  # noqa: BLE001 - an invalid option value is shown, not raised
            self.params_label.setText("—")
            self.memory_label.setText(str(exc))
            return
        self._request += 1
        req, size = self._request, self.size_spin.value()
        w = self.ctx.start_worker(lambda on_event, cancel: estimate(name, opts, size))
        w.finished.connect(lambda r, req=req: self._show_stats(req, r))
        w.failed.connect(lambda exc, req=req: self._show_stats(req, None, exc))
        self._stats_worker = w
        if "pretrained" in opts:
            ww = self.ctx.start_worker(lambda on_event, cancel: weights_report(name, opts))
            ww.finished.connect(lambda r, req=req: self._show_weights(req, r))
            ww.failed.connect(lambda exc, req=req: self._show_weights(req, None, exc))
            self._weights_worker = ww
        else:
            self._show_weights(req, None)

    def _show_stats(self, req: int, r: dict | None, exc: BaseException | None = None) -> None:
        if req != self._request:
            return
        self.last_stats = r
        if r is None:
            self.params_label.setText("—")
            self.memory_label.setText(f"Cannot build this model: {exc}")
            return
        self.params_label.setText(f"{human_count(r['params'])} ({r['params']:,})")
        size = self.size_spin.value()
        w = r["weights_bytes"]
        if r["act_bytes"] is None:
            self.memory_label.setText(human_bytes(w))
            detail = f"Weights {human_bytes(w)}; no activation estimate for this model."
        else:
            a = r["act_bytes"]
            self.memory_label.setText(human_bytes(w + a))
            kind = r["info"].kind
            one = {"classifier": "one 28×28 image", "language-model": "one row of 20 tokens"}.get(kind, f"one {size}×{size} image")
            detail = f"Weights {human_bytes(w)} + activations {human_bytes(a)} for {one}. "
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
