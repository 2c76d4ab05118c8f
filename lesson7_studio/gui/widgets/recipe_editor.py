"""Crappify recipe editor: a preset, then each step's parameters as widgets.

Steps can be added, removed and reordered. Every edit rebuilds the recipe through
``crappify.step_from_dict`` (which validates); a valid recipe is announced with
``recipe_changed``, an invalid one shows the core's message under the steps.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core import crappify
from lesson7_studio.core.errors import Lesson7Error

from .common import label, set_role
from .forms import FieldSpec, OptionsForm, specs_from_dataclass

CUSTOM = "(custom)"

# Bounds and choices the step dataclasses check in __post_init__, for friendlier widgets.
BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("resize", "factor"): (1, 64),
    ("resize", "shortest_side"): (1, 100000),
    ("jpeg", "quality"): (1, 100),
    ("text", "size"): (1, 4096),
    ("text", "relative_size"): (0.001, 1.0),
    ("text", "size_spread"): (1.0, 8.0),
    ("noise", "sigma"): (0, 255),
    ("blur", "radius"): (0, 100),
    ("old_photo", "sepia"): (0, 1),
    ("old_photo", "fade"): (0, 1),
    ("old_photo", "vignette"): (0, 1),
    ("old_photo", "grain"): (0, 255),
    ("old_photo", "blur"): (0, 20),
    ("old_photo", "scratches"): (0, 1000),
    ("old_photo", "dust"): (0, 100000),
}
HELP: dict[tuple[str, str], str] = {
    ("resize", "factor"): "Shrink by this integer factor (leave empty to use 'shortest side').",
    ("resize", "shortest_side"): "Resize so the shortest side has this many pixels (leave empty to use 'factor').",
    ("resize", "resample"): "Resampling filter used to shrink.",
    ("jpeg", "quality"): "JPEG quality drawn uniformly in this range (inclusive).",
    ("text", "text"): "Text to write; empty writes the quality of the next JPEG step (the course's trick).",
    ("text", "size"): "Font size in pixels (ignored when 'relative size' is set).",
    ("text", "relative_size"): "Font size as a fraction of the shortest side (empty: use 'size').",
    ("text", "region"): "Where the text may go: x0, y0, x1, y1 as fractions of the image.",
    ("text", "color"): "Text colour: r, g, b (0-255).",
    ("text", "size_spread"): "Training augmentation: the font size is multiplied by a random factor in 1..this (1 = fixed).",
    ("noise", "sigma"): "Gaussian noise strength (0-255 units), drawn in this range.",
    ("noise", "mono"): "Same noise on the three channels (luminance noise).",
    ("blur", "radius"): "Gaussian blur radius in pixels, drawn in this range.",
}
STEP_HINTS = {
    "resize": "Shrink the photo.",
    "jpeg": "JPEG compression at a random quality.",
    "text": "Write text on the photo (by default the JPEG quality).",
    "noise": "Gaussian noise.",
    "blur": "Gaussian blur.",
    "greyscale": "Remove the colour.",
    "old_photo": "Sepia, fading, grain, scratches and dust.",
}
STEP_TITLES = {
    "resize": "Resize",
    "jpeg": "JPEG",
    "text": "Text",
    "noise": "Noise",
    "blur": "Blur",
    "greyscale": "Greyscale",
    "old_photo": "Old photo",
}


def step_specs(step: crappify.Step) -> list[FieldSpec]:
    specs = specs_from_dataclass(step)
    for s in specs:
        key = (step.kind, s.name)
        if key in BOUNDS:
            s.minimum, s.maximum = BOUNDS[key]
        if key in HELP:
            s.help = HELP[key]
        if (step.kind, s.name) == ("resize", "resample"):
            s.choices = crappify.RESAMPLE_NAMES
    return specs


class StepEditor(QGroupBox):
    """One step: its parameters and move / remove buttons."""

    changed = Signal()
    move_requested = Signal(object, int)  # self, -1 | +1
    remove_requested = Signal(object)

    def __init__(self, step: crappify.Step, parent: QWidget | None = None) -> None:
        super().__init__(STEP_TITLES.get(step.kind, step.kind), parent)
        self.kind = step.kind
        self.setObjectName(f"step_{step.kind}")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        bar = QHBoxLayout()
        bar.addWidget(label(STEP_HINTS.get(step.kind, ""), "hint", wrap=True), 1)
        for text, tip, slot in (
            ("↑", "Move up", lambda: self.move_requested.emit(self, -1)),
            ("↓", "Move down", lambda: self.move_requested.emit(self, 1)),
            ("✕", "Remove this step", lambda: self.remove_requested.emit(self)),
        ):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.clicked.connect(slot)
            bar.addWidget(b)
        lay.addLayout(bar)
        self.form = OptionsForm()
        self.form.set_specs(step_specs(step))
        self.form.changed.connect(self.changed.emit)
        if self.form.fields:
            lay.addWidget(self.form)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.form.values()}


class RecipeEditor(QWidget):
    """Preset combo + step editors. ``recipe()`` is the current valid recipe."""

    recipe_changed = Signal(object)  # crappify.Recipe
    invalid = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._recipe: crappify.Recipe = copy.deepcopy(crappify.PRESETS["decrappify-x2"])
        self._steps: list[StepEditor] = []
        self._loading = False

        self.preset = QComboBox()
        self.preset.setObjectName("presetCombo")
        for name, r in crappify.PRESETS.items():
            self.preset.addItem(name, name)
            self.preset.setItemData(self.preset.count() - 1, r.description, 3)  # ToolTipRole
        self.preset.addItem(CUSTOM, None)
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        self.desc = label("", "hint", wrap=True)

        self.add_button = QPushButton("Add step")
        menu = QMenu(self.add_button)
        for kind, cls in crappify.STEP_TYPES.items():
            menu.addAction(STEP_TITLES.get(kind, kind), lambda k=kind: self.add_step(k))
        self.add_button.setMenu(menu)
        self.load_button = QPushButton("Load…")
        self.load_button.setToolTip("Load a recipe .json file")
        self.load_button.clicked.connect(self._load_file)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save this recipe as a .json file (usable with the CLI's --recipe)")
        self.save_button.clicked.connect(self._save_file)

        self.steps_box = QVBoxLayout()
        self.steps_box.setSpacing(4)
        self.error = label("", "error", wrap=True)
        self.error.setVisible(False)
        self.summary = label("", "hint", wrap=True)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        top = QHBoxLayout()
        top.addWidget(label("Preset"))
        top.addWidget(self.preset, 1)
        lay.addLayout(top)
        lay.addWidget(self.desc)
        lay.addLayout(self.steps_box)
        lay.addWidget(self.error)
        lay.addWidget(self.summary)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.save_button)
        lay.addLayout(buttons)
        self.set_recipe(self._recipe)

    # ------------------------------------------------------------------ public
    def recipe(self) -> crappify.Recipe:
        """The last valid recipe."""
        return copy.deepcopy(self._recipe)

    def set_recipe(self, recipe: crappify.Recipe) -> None:
        self._loading = True
        try:
            for ed in self._steps:
                ed.setParent(None)
                ed.deleteLater()
            self._steps = []
            for step in recipe.steps:
                self._append_editor(step)
            idx = self.preset.findData(recipe.name)
            same_as_preset = idx >= 0 and crappify.PRESETS[recipe.name].hash() == recipe.hash()
            self.preset.blockSignals(True)
            self.preset.setCurrentIndex(idx if same_as_preset else self.preset.count() - 1)
            self.preset.blockSignals(False)
            self._recipe = copy.deepcopy(recipe)
        finally:
            self._loading = False
        self._update_labels()
        self._show_error("")
        self.recipe_changed.emit(self.recipe())

    def set_preset(self, name: str) -> None:
        self.set_recipe(crappify.get_recipe(name))

    def step_editors(self) -> list[StepEditor]:
        return list(self._steps)

    def set_param(self, step_index: int, name: str, value: Any) -> None:
        """Set one step parameter as if the user had edited it (tests, scripting)."""
        self._steps[step_index].form.field(name).set_value(value)
        self._rebuild()

    def to_json(self) -> str:
        return self._recipe.to_json()

    # ------------------------------------------------------------------ steps
    def _append_editor(self, step: crappify.Step, index: int | None = None) -> StepEditor:
        ed = StepEditor(step)
        ed.changed.connect(self._rebuild)
        ed.move_requested.connect(self._move)
        ed.remove_requested.connect(self._remove)
        if index is None:
            self._steps.append(ed)
            self.steps_box.addWidget(ed)
        else:
            self._steps.insert(index, ed)
            self.steps_box.insertWidget(index, ed)
        return ed

    def add_step(self, kind: str) -> None:
        cls = crappify.STEP_TYPES[kind]
        step = cls(factor=2) if kind == "resize" else cls()
        # a new step goes before a final JPEG step, so the JPEG stays last (its bytes are kept)
        idx = len(self._steps)
        if kind != "jpeg" and self._steps and self._steps[-1].kind == "jpeg":
            idx -= 1
        self._append_editor(step, idx)
        self._rebuild()

    def _move(self, ed: StepEditor, delta: int) -> None:
        i = self._steps.index(ed)
        j = i + delta
        if not 0 <= j < len(self._steps):
            return
        self._steps.pop(i)
        self._steps.insert(j, ed)
        self.steps_box.removeWidget(ed)
        self.steps_box.insertWidget(j, ed)
        self._rebuild()

    def _remove(self, ed: StepEditor) -> None:
        if len(self._steps) <= 1:
            self._show_error("A recipe needs at least one step.")
            return
        self._steps.remove(ed)
        ed.setParent(None)
        ed.deleteLater()
        self._rebuild()

    def _rebuild(self) -> None:
        if self._loading:
            return
        name = self._recipe.name if self.preset.currentData() is None else self.preset.currentData()
        try:
            steps = [crappify.step_from_dict(ed.as_dict()) for ed in self._steps]
            recipe = crappify.Recipe(name, steps, self._recipe.description)
        except (Lesson7Error, TypeError, ValueError) as err:
            self._show_error(str(err))
            self.invalid.emit(str(err))
            return
        preset = crappify.PRESETS.get(recipe.name)
        if preset is None or preset.hash() != recipe.hash():
            if preset is not None:
                recipe = crappify.Recipe(f"{recipe.name}-custom", recipe.steps, "Edited from " + recipe.name)
            self.preset.blockSignals(True)
            self.preset.setCurrentIndex(self.preset.count() - 1)
            self.preset.blockSignals(False)
        self._recipe = recipe
        self._show_error("")
        self._update_labels()
        self.recipe_changed.emit(self.recipe())

    def _preset_chosen(self, _index: int) -> None:
        name = self.preset.currentData()
        if name is not None:
            self.set_preset(name)

    # ------------------------------------------------------------------ labels and files
    def _update_labels(self) -> None:
        r = self._recipe
        self.desc.setText(r.description or "A custom recipe.")
        scale = r.scale
        scale_txt = (
            "same size" if scale == 1 else f"{scale}× smaller" if scale else "resized to a fixed size"
        )
        out = "JPEG" if r.ends_with_jpeg else "PNG"
        self.summary.setText(f"Degraded images: {scale_txt}, saved as {out}. Hash {r.hash()[:10]}.")

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))
        set_role(self.error, "error")

    def _load_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load recipe", str(Path.home()), "Recipe (*.json)")
        if not path:
            return
        try:
            self.set_recipe(crappify.get_recipe(path))
        except Lesson7Error as err:
            self._show_error(str(err))

    def _save_file(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save recipe", str(Path.home() / f"{self._recipe.name}.json"), "Recipe (*.json)"
        )
        if not path:
            return
        from lesson7_studio.core.images import atomic_write

        with atomic_write(path) as tmp:
            Path(tmp).write_text(self._recipe.to_json() + "\n", encoding="utf-8")

    def state(self) -> str:
        """JSON for settings."""
        return json.dumps(self._recipe.to_dict())

    def restore_state(self, text: str) -> bool:
        try:
            self.set_recipe(crappify.Recipe.from_json(text))
            return True
        except (Lesson7Error, TypeError, ValueError):
            return False
