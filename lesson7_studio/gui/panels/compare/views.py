"""The Compare panel's view area: Before / After choice, four ways to look at them, their options.

Split (one image divided by a draggable line), side by side (two linked views), flicker
(alternating in place) and an amplified difference heatmap; all views zoom and pan together.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...widgets.elided_combo import ElidedComboBox
from ...widgets.heatmap import HeatmapLegend, auto_gain, difference_map, difference_overlay
from ...widgets.image_view import FlickerView, ImageView, SplitView, ZoomBar
from .sources import BICUBIC, GT, INPUT, Source

MODES = [("split", "Split"), ("side", "Side by side"), ("flicker", "Flicker"), ("diff", "Difference")]
SHORT_MODES = {"side": "Side", "diff": "Diff"}  # in a narrow panel, to leave room for Before/After
MODE_TIPS = {
    "split": "Split: one image, divided; drag the white line",
    "side": "Side by side: two views that zoom and pan together",
    "flicker": "Flicker: alternate the two images in place (space toggles)",
    "diff": "Difference: where After differs from Before, amplified",
}
HINTS = {"split": "Drag the white line; wheel zooms, drag pans.", "side": "Both views zoom and pan together.",
         "flicker": "", "diff": ""}


class CompareViews(QWidget):
    """Shows two of ``sources`` (key -> Source, filled by the panel) as chosen in Before / After."""

    def __init__(self, settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.sources: dict[str, Source] = {}
        self._mode = "split"
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addLayout(self._build_bar())
        lay.addWidget(self._build_stack(), 1)
        lay.addLayout(self._build_options())

    # ------------------------------------------------------------------ layout
    def _build_bar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        bar.setSpacing(4)
        self.mode_group = QButtonGroup(self)
        self.mode_group.setExclusive(True)
        self.mode_buttons: dict[str, QToolButton] = {}
        for i, (key, text) in enumerate(MODES):
            b = QToolButton(self)
            b.setText(text)
            b.setCheckable(True)
            b.setObjectName(f"mode_{key}")
            b.setToolTip(MODE_TIPS[key])
            self.mode_group.addButton(b, i)
            self.mode_buttons[key] = b
            bar.addWidget(b)
        self.mode_group.idClicked.connect(lambda i: self.set_mode(MODES[i][0]))
        bar.addSpacing(10)
        self.before_caption = QLabel("Before", self)
        bar.addWidget(self.before_caption)
        self.before_combo = ElidedComboBox(self, 10, "The image on the left / the reference")
        self.before_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        bar.addWidget(self.before_combo, 2)
        bar.addWidget(QLabel("After", self))
        self.after_combo = ElidedComboBox(self, 10, "The image on the right (saved by Save result)")
        self.after_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        bar.addWidget(self.after_combo, 3)
        return bar

    def _build_stack(self) -> QStackedWidget:
        self.stack = QStackedWidget(self)
        self.split_view = SplitView(placeholder="Open an image, drop one here,\nor pick a dataset image on the left.")
        self.left_view = ImageView(placeholder="Before")
        self.right_view = ImageView(placeholder="After")
        side_by_side = QSplitter(Qt.Orientation.Horizontal)
        side_by_side.addWidget(self.left_view)
        side_by_side.addWidget(self.right_view)
        side_by_side.setHandleWidth(4)
        self.flicker_view = FlickerView(placeholder="Nothing to flicker yet")
        self.diff_view = ImageView(placeholder="Restore the image to see the difference")
        for w in (self.split_view, side_by_side, self.flicker_view, self.diff_view):
            self.stack.addWidget(w)
        views = [self.split_view, self.left_view, self.right_view, self.flicker_view, self.diff_view]
        for v in views:
            v.setAcceptDrops(False)  # a drop opens the image in the panel
            v.viewport().setAcceptDrops(False)
        for v in views[1:]:
            self.split_view.link(v)
        return self.stack

    def _build_options(self) -> QHBoxLayout:
        opts = QHBoxLayout()
        opts.setSpacing(6)
        self.hint_label = QLabel("", self)
        self.hint_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        opts.addWidget(self.hint_label)
        self._build_flicker_options(opts)
        self._build_diff_options(opts)
        opts.addStretch(1)
        self.zoom_bar = ZoomBar(self.split_view, self)
        opts.addWidget(self.zoom_bar)
        return opts

    def _build_flicker_options(self, opts: QHBoxLayout) -> None:
        self.flicker_check = QCheckBox("Alternate", self)
        self.flicker_check.setChecked(True)
        self.flicker_check.toggled.connect(self._flicker_toggled)
        opts.addWidget(self.flicker_check)
        self.flicker_speed = QSpinBox(self)
        self.flicker_speed.setRange(100, 3000)
        self.flicker_speed.setSingleStep(100)
        self.flicker_speed.setValue(600)
        self.flicker_speed.setSuffix(" ms")
        self.flicker_speed.valueChanged.connect(self.flicker_view.set_interval)
        opts.addWidget(self.flicker_speed)
        self.switch_button = QToolButton(self)
        self.switch_button.setText("Switch")
        self.switch_button.setToolTip("Show the other image (space)")
        self.switch_button.clicked.connect(self.flicker_view.next)
        opts.addWidget(self.switch_button)

    def _build_diff_options(self, opts: QHBoxLayout) -> None:
        self.gain_label = QLabel("Amplify", self)
        opts.addWidget(self.gain_label)
        self.gain_spin = QSpinBox(self)
        self.gain_spin.setRange(1, 50)
        self.gain_spin.setValue(int(self.settings.value("compare/gain", 5)))
        self.gain_spin.setPrefix("\u00d7")
        self.gain_spin.setToolTip("Multiply the differences so small ones become visible")
        self.gain_spin.valueChanged.connect(self._gain_changed)
        opts.addWidget(self.gain_spin)
        self.auto_gain_check = QCheckBox("Auto", self)
        self.auto_gain_check.setToolTip("Pick the amplification so the largest differences use the whole colour scale")
        self.auto_gain_check.setChecked(bool(self.settings.value("compare/auto_gain", True)))
        self.auto_gain_check.toggled.connect(self._auto_gain_toggled)
        opts.addWidget(self.auto_gain_check)
        self.legend = HeatmapLegend(self, colormap="inferno")
        self.legend.setMaximumWidth(320)
        opts.addWidget(self.legend)

    # ------------------------------------------------------------------ mode
    def set_mode(self, mode: str) -> None:
        """"split", "side", "flicker" or "diff" (remembered in the settings)."""
        keys = [k for k, _t in MODES]
        self.mode_buttons[mode].setChecked(True)
        self.stack.setCurrentIndex(keys.index(mode))
        self.settings.set_value("compare/mode", mode)
        self._mode = mode
        view = {"split": self.split_view, "side": self.right_view, "flicker": self.flicker_view,
                "diff": self.diff_view}[mode]
        self.zoom_bar.set_view(view)
        for w in (self.flicker_check, self.flicker_speed, self.switch_button):
            w.setVisible(mode == "flicker")
        for w in (self.gain_label, self.gain_spin, self.auto_gain_check, self.legend):
            w.setVisible(mode == "diff")
        self.before_caption.setText("Reference" if mode == "diff" else "Before")
        self.hint_label.setText(HINTS[mode])
        self.hint_label.setVisible(bool(self.hint_label.text()))
        self.refresh(keep_view=True)

    def mode(self) -> str:
        return self._mode

    def set_compact(self, compact: bool) -> None:
        """Short mode names (a narrow panel leaves room for Before / After)."""
        for key, text in MODES:
            self.mode_buttons[key].setText(SHORT_MODES.get(key, text) if compact else text)

    def next_flicker(self) -> bool:
        """Show the other image when flickering (the space key); False in other modes."""
        if self._mode != "flicker":
            return False
        self.flicker_view.next()
        return True

    # ------------------------------------------------------------------ contents
    def refresh_combos(self, prefer_after: str | None = None) -> None:
        """List the sources in Before / After, keeping the choices; ``prefer_after``: a result
        that just came in becomes After unless the user picked a model there."""
        order = [INPUT, BICUBIC, GT] + [k for k in self.sources if k not in (INPUT, BICUBIC, GT)]
        keys = [k for k in order if k in self.sources and not (k == INPUT and BICUBIC in self.sources)]
        models = [k for k in keys if k not in (INPUT, BICUBIC, GT)]
        before_default = BICUBIC if BICUBIC in keys else INPUT
        after_default = prefer_after or (models[0] if models else (GT if GT in keys else before_default))
        for combo, default in ((self.before_combo, before_default), (self.after_combo, after_default)):
            cur = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for k in keys:
                combo.addItem(self.sources[k].label, k)
            want = cur if (cur in keys and (combo is self.before_combo or prefer_after is None)) else default
            if combo is self.after_combo and prefer_after is not None and cur in models:
                want = cur  # keep the user's model choice; the first result becomes After
            combo.setCurrentIndex(max(0, combo.findData(want)))
            combo.setEnabled(combo.count() > 1)
            combo.blockSignals(False)

    def pair(self) -> tuple[Source | None, Source | None]:
        return self.sources.get(self.before_combo.currentData()), self.sources.get(self.after_combo.currentData())

    def refresh(self, keep_view: bool = False) -> None:
        """Show the chosen Before / After in every view (``keep_view``: same zoom and region)."""
        before, after = self.pair()
        keep = keep_view and self.split_view.has_image()
        if before is None and after is None:
            for v in (self.split_view, self.left_view, self.right_view, self.diff_view):
                v.clear()
            self.flicker_view.set_images([])
            return
        after = after if after is not None else before
        before = before if before is not None else after
        self.split_view.set_images(before.display, after.display, before_label=before.label,
                                   after_label=after.label, keep_view=keep)
        for view, src in ((self.left_view, before), (self.right_view, after)):
            view.set_image(src.display, keep_view=keep)
            view.set_label(src.label)
        self.flicker_view.set_images([before.display, after.display], [before.label, after.label], keep_view=keep)
        self.flicker_view.set_flicker(self._mode == "flicker" and self.flicker_check.isChecked()
                                      and before is not after)
        self._refresh_diff(before, after, keep)
        self._update_legend()

    def _refresh_diff(self, before: Source, after: Source, keep: bool) -> None:
        if before is after or before.display.shape != after.display.shape:
            self.diff_view.clear()
            self.diff_view.set_placeholder("Restore the image to see the difference" if before is after
                                           else "The two images differ in size")
            return
        if self.auto_gain_check.isChecked():
            g = int(round(auto_gain(difference_map(after.display, before.display))))
            self.gain_spin.blockSignals(True)
            self.gain_spin.setValue(max(1, min(50, g)))
            self.gain_spin.blockSignals(False)
        gain = self.gain_spin.value()
        self.diff_view.set_image(difference_overlay(after.display, before.display, gain), keep_view=keep)
        self.diff_view.set_label(f"|{after.label} \u2212 {before.label}| \u00d7{gain}")

    def _update_legend(self) -> None:
        gain = self.gain_spin.value()
        self.legend.set_title("Difference per pixel (of 255)")
        self.legend.set_labels("0 (same)", f"\u2265{255 / gain:.0f}", f"{127.5 / gain:.0f}")

    def _gain_changed(self, v: int) -> None:
        self.settings.set_value("compare/gain", int(v))
        self.auto_gain_check.setChecked(False)  # a hand-picked gain stays
        self.refresh(keep_view=True)

    def _auto_gain_toggled(self, on: bool) -> None:
        self.settings.set_value("compare/auto_gain", bool(on))
        self.refresh(keep_view=True)

    def _flicker_toggled(self, on: bool) -> None:
        self.flicker_view.set_flicker(on and self._mode == "flicker")
