"""The preview: the HR image the build writes for the selected photo beside its crappified
pair, and the dataset seed (the one the build uses)."""

from __future__ import annotations

import random

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QSizePolicy, QSpinBox, QSplitter, QVBoxLayout, QWidget

from lesson7_studio.core.crappify import Preview

from ...widgets.common import button, label
from ...widgets.image_view import ImageView

SEED_MAX = 2**31 - 1


def describe_draws(params: dict, seconds: float) -> str:
    """The values the recipe drew for this photo, in words, and how long the preview took."""
    shown = []
    if "quality" in params:
        shown.append(f"JPEG quality {params['quality']}")
    if "noise_sigma" in params:
        shown.append(f"noise σ {params['noise_sigma']:.1f}")
    if "blur_radius" in params:
        shown.append(f"blur {params['blur_radius']:.2f} px")
    shown.append(f"{seconds * 1000:.0f} ms")
    return " · ".join(shown)


class PreviewPane(QWidget):
    """Original and crappified views (zoomed together), the seed bar; ``seed_changed`` when the
    user picks another seed."""

    seed_changed = Signal(int)

    def __init__(self, seed: int = 0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.original_view = ImageView(label="Original", placeholder="Select a photo")
        self.crappy_view = ImageView(label="Crappified", placeholder="Preview")
        self.original_view.link(self.crappy_view)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, SEED_MAX)
        self.seed_spin.setValue(max(0, min(int(seed), SEED_MAX)))
        self.seed_spin.setMaximumWidth(120)
        self.seed_spin.setToolTip("The dataset's seed: the build uses it too. Each photo's random draws "
                                  "(JPEG quality, text position, noise) come from it and the photo's name.")
        self.seed_spin.valueChanged.connect(self.seed_changed)
        self.new_seed_button = button("New seed", tooltip="Draw other random values")
        self.new_seed_button.clicked.connect(self.new_seed)
        self.fit_button = button("Fit")
        self.fit_button.clicked.connect(self.original_view.fit)
        self.one_button = button("1:1")
        self.one_button.clicked.connect(self.original_view.one_to_one)
        self.params_label = label("", "hint")
        self.params_label.setMinimumWidth(0)
        self.params_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.views_split = QSplitter(Qt.Orientation.Horizontal)
        self.views_split.setObjectName("previewSplit")
        self.views_split.setChildrenCollapsible(False)
        self.views_split.addWidget(self.original_view)
        self.views_split.addWidget(self.crappy_view)
        self._layout()
        self._hr = None  # the HR image shown on the left
        self.last: Preview | None = None

    def _layout(self) -> None:
        pl = QVBoxLayout(self)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.views_split, 1)
        bar = QHBoxLayout()
        bar.addWidget(label("Seed"))
        bar.addWidget(self.seed_spin)
        bar.addWidget(self.new_seed_button)
        bar.addWidget(self.params_label, 1)
        bar.addWidget(self.fit_button)
        bar.addWidget(self.one_button)
        pl.addLayout(bar)

    def seed(self) -> int:
        return self.seed_spin.value()

    def new_seed(self) -> None:
        old = self.seed_spin.value()
        new = old
        while new == old:
            new = random.randrange(0, SEED_MAX)
        self.seed_spin.setValue(new)

    def show_preview(self, pv: Preview, *, new_photo: bool = False) -> None:
        """Show ``pv``: its HR image on the left, its LR image (enlarged, blocks visible) on the
        right. The zoom and position stay unless it is the first preview of ``new_photo``."""
        if pv.hr is not self._hr:
            keep = not new_photo and self._hr is not None and self._hr.size == pv.hr.size
            self._hr = pv.hr
            self.original_view.set_image(pv.hr, keep_view=keep)
            self.update_orientation()
        self.crappy_view.set_image(pv.shown(), keep_view=True)
        self.params_label.setText(describe_draws(pv.params, pv.seconds))
        self.last = pv

    def show_message(self, text: str, clear: bool = False) -> None:
        if clear:
            self.clear()
        self.params_label.setText(text)

    def clear(self) -> None:
        self._hr = None
        self.last = None
        self.original_view.clear()
        self.crappy_view.clear()

    def update_orientation(self) -> None:
        """Side by side for tall photos, one above the other for wide ones: bigger previews."""
        if self._hr is None:
            return
        w, h = self._hr.size
        area = self.views_split.size()
        wide = w / max(h, 1) > area.width() / max(area.height(), 1)
        orient = Qt.Orientation.Vertical if wide else Qt.Orientation.Horizontal
        if self.views_split.orientation() != orient:
            self.views_split.setOrientation(orient)
            n = area.height() if wide else area.width()
            self.views_split.setSizes([n // 2, n - n // 2])
            self.original_view.fit()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.update_orientation()
