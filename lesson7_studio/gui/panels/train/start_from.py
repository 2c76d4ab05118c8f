"""The Train form's "Start from" choice: scratch, the ImageNet encoder, the starter model or
one of the project's checkpoints (the CLI's --init and --no-pretrained).

The choice is a key of :func:`lesson7_studio.core.train.recipes.apply_start`: "scratch",
"imagenet", "starter" or a checkpoint path. The user's last choice (or the recipe's own) comes
back when a model change offers it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox

from lesson7_studio.core.train import recipes as train_recipes

from ...widgets.common import label

START_HINTS = {
    "scratch": "Random weights: slowest to learn, needs no download.",
    "imagenet": "The encoder starts from ImageNet classification weights (downloaded once), the decoder "
                "from random ones: the lesson's transfer learning.",
    "starter": "Fine-tune the bundled starter model: its weights and architecture; the Model choice is "
               "ignored. Use lower learning rates (the finetune recipe has them).",
    "checkpoint": "Continue from this checkpoint's weights and architecture; the Model choice is ignored.",
}
NAMED = ("scratch", "imagenet", "starter")


class StartFrom(QObject):
    """Fills ``combo`` (items: (kind, checkpoint path or None)) and its hint label."""

    changed = Signal()

    def __init__(self, ctx, combo: QComboBox, generator_arch: Callable[[], str]) -> None:
        super().__init__(combo)
        self.ctx = ctx
        self.combo = combo
        self.combo.setToolTip("Where the generator's weights start (the CLI's --init and --no-pretrained)")
        self.hint = label("", "hint", wrap=True)
        self._generator_arch = generator_arch
        self._wanted: str | None = None
        self.combo.currentIndexChanged.connect(self._chosen)

    def key(self) -> str:
        """"scratch", "imagenet", "starter" or a checkpoint path."""
        data = self.combo.currentData()
        if not data:
            return "scratch"
        return data[1] if data[0] == "checkpoint" else data[0]

    def fill(self, cfg, want: str | None = None) -> None:
        """The starting points recipe ``cfg`` and the chosen model allow; selects ``want``
        (default: the last choice of the user or the recipe)."""
        if want is not None:
            self._wanted = want
        want = self._wanted or self.key()
        restorer = not train_recipes.is_wgan(cfg)
        combo = self.combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("From scratch", ("scratch", None))
        if restorer:
            if train_recipes.has_imagenet_encoder(self._generator_arch()):
                combo.addItem("ImageNet encoder", ("imagenet", None))
            combo.addItem("Starter model", ("starter", None))
            for m in self.ctx.available_models():
                if m.source == "starter" or Path(m.path).suffix.lower() != ".safetensors":
                    continue  # training starts only from this project's own checkpoints
                combo.addItem(m.label if m.source == "run" else f"Model: {m.label}", ("checkpoint", str(m.path)))
                combo.setItemData(combo.count() - 1, str(m.path), Qt.ItemDataRole.ToolTipRole)
            if want not in NAMED and self.index_of(want) < 0 and Path(want).is_file():
                combo.addItem(f"Checkpoint: {Path(want).name}", ("checkpoint", want))
        i = self.index_of(want)
        combo.setCurrentIndex(i if i >= 0 else 0)
        combo.setEnabled(restorer)
        combo.blockSignals(False)
        self._show_hint()

    def index_of(self, key: str) -> int:
        for i in range(self.combo.count()):
            kind, path = self.combo.itemData(i)
            if kind == key or (kind == "checkpoint" and path == key):
                return i
        return -1

    def _chosen(self, *_args) -> None:
        self._wanted = self.key()  # the user's own choice
        self._show_hint()

    def _show_hint(self) -> None:
        data = self.combo.currentData() or ("scratch", None)
        self.hint.setText(START_HINTS[data[0]])
        self.changed.emit()
