"""The critic's opinion of one sample image: the image, its patch map over it, a legend.

The map is computed in core (:func:`lesson7_studio.core.train.critic_map.critic_job`) in a
worker; this widget only asks for it and shows the numpy result. A request made while one is
running replaces the waiting one, so scrubbing the timeline never queues up stale maps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QBoxLayout, QComboBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from ...widgets.heatmap import HeatmapLegend, overlay_heatmap
from ...widgets.image_view import ImageView

JUDGE_COLUMNS = (("Prediction (generated)", 1), ("Target (real)", 2))  # (label, column of the grid row)


class CriticView(QWidget):
    """Sample chooser, the judged image and the critic's patch map beside it."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._cells: list[list[np.ndarray]] = []
        self._cache: dict = {}
        self._critic_path: Path | None = None
        self._worker = None
        self._want: tuple | None = None
        self._img: np.ndarray | None = None
        self._fake_map: np.ndarray | None = None
        self._build()

    def _build(self) -> None:
        cl = QVBoxLayout(self)
        cl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Sample", self))
        self.row_spin = QSpinBox(self)
        self.row_spin.setMinimum(1)
        self.row_spin.valueChanged.connect(lambda _v: self.refresh())
        row.addWidget(self.row_spin)
        row.addWidget(QLabel("Judge", self))
        self.judge_combo = QComboBox(self)
        for text, col in JUDGE_COLUMNS:
            self.judge_combo.addItem(text, col)
        self.judge_combo.setToolTip("Which image the critic looks at; compare its opinion of a real image")
        self.judge_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        row.addWidget(self.judge_combo)
        row.addStretch(1)
        cl.addLayout(row)
        self._pair = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.image_view = ImageView(self, placeholder="No sample")
        self.heat_view = ImageView(self, placeholder="No critic map")
        self.image_view.link(self.heat_view)
        self._pair.addWidget(self.image_view, 1)
        self._pair.addWidget(self.heat_view, 1)
        cl.addLayout(self._pair, 1)
        self.legend = HeatmapLegend(self, colormap="fake", title="Critic: each patch's chance of being fake",
                                    low="real (0)", middle="unsure", high="fake (1)")
        cl.addWidget(self.legend)
        self.critic_label = QLabel("", self)
        self.critic_label.setWordWrap(True)
        cl.addWidget(self.critic_label)

    # ------------------------------------------------------------------ what to judge
    def set_critic(self, path: Path | None) -> None:
        """The critic checkpoint to judge with (None: the run has none)."""
        if path != self._critic_path:
            self._cache.clear()
        self._critic_path = path

    def forget_critic(self) -> None:
        """Drop the loaded critic (another run was chosen)."""
        self._cache.clear()

    def set_cells(self, cells: list[list[np.ndarray]], gan_stage: bool) -> None:
        """The rows (input, prediction, target) of the sample grid shown; ``gan_stage`` says
        whether it comes from a stage where the critic took part."""
        self._cells = cells
        self._gan_stage = gan_stage
        self.row_spin.setMaximum(max(1, len(cells)))
        self.refresh()

    def refresh(self) -> None:
        cells = self._cells
        if not cells:
            self.image_view.clear()
            self.heat_view.clear()
            self.critic_label.setText("")
            return
        r = min(self.row_spin.value(), len(cells)) - 1
        col = int(self.judge_combo.currentData() or 1)
        img = np.ascontiguousarray(cells[r][col])
        self.update_direction()
        self.image_view.set_image(img, keep_view=True)
        self.image_view.set_label("Generated" if col == 1 else "Real")
        if self._critic_path is None:
            self.heat_view.clear()
            self.heat_view.set_placeholder("This run has no critic checkpoint")
            self.critic_label.setText("The critic's opinion needs a GAN run (its critic is saved in checkpoints/).")
            self.legend.setVisible(False)
            return
        self.legend.setVisible(True)
        note = "" if getattr(self, "_gan_stage", False) else " (this epoch is from a non-GAN stage)"
        self.critic_label.setText(f"Critic from {self._critic_path.name}, the newest saved{note}.")
        self._request(img)

    def update_direction(self) -> None:
        """Image and critic map side by side, or one above the other, whichever shows them larger."""
        if not self._cells:
            return
        ch, cw = self._cells[0][1].shape[:2]
        stacked_now = self._pair.direction() == QBoxLayout.Direction.TopToBottom
        if stacked_now:
            bw, bh = max(1, self.image_view.width()), max(1, self.image_view.height() + self.heat_view.height())
        else:
            bw, bh = max(1, self.image_view.width() + self.heat_view.width()), max(1, self.image_view.height())
        side = min(bw / 2 / cw, bh / ch)
        stacked = min(bw / cw, bh / 2 / ch)
        want = QBoxLayout.Direction.TopToBottom if stacked > side * 1.1 else QBoxLayout.Direction.LeftToRight
        if want != self._pair.direction():
            self._pair.setDirection(want)

    # ------------------------------------------------------------------ the worker
    def _request(self, img: np.ndarray) -> None:
        self._want = (self._critic_path, img)
        if self._worker is not None and self._worker.is_running():
            return  # picked up when the running one ends
        self._start()

    def _start(self) -> None:
        if self._want is None:
            return
        from lesson7_studio.core.train.critic_map import critic_job  # torch: loaded on first use only

        path, img = self._want
        self._want = None
        w = self.ctx.start_worker(critic_job, path, img, cache=self._cache)
        self._worker = w
        self._img = img
        w.finished.connect(self._on_map)
        w.failed.connect(self._on_failed)
        w.done.connect(self._on_done)

    def _on_done(self) -> None:
        self._worker = None
        self._start()

    def _on_map(self, fake: np.ndarray) -> None:
        if self._want is not None:
            return  # a newer image is waiting
        self._fake_map = fake
        self.heat_view.set_image(overlay_heatmap(self._img, fake, "fake", 0.6), keep_view=True)
        mean = float(np.mean(fake))
        self.heat_view.set_label(f"Critic: {mean:.0%} fake on average")
        self.heat_view.setToolTip(f"{fake.shape[1]}\u00d7{fake.shape[0]} patches; mean belief fake {mean:.2f}")

    def _on_failed(self, exc: BaseException) -> None:
        self.heat_view.clear()
        self.heat_view.set_placeholder("The critic could not score this image")
        self.critic_label.setText("Critic failed: " + str(getattr(exc, "message", exc)).splitlines()[0])

    def fake_map(self) -> np.ndarray | None:
        """The last critic map shown (patch grid of 'fake' beliefs in [0,1])."""
        return self._fake_map

    def is_busy(self) -> bool:
        return self._worker is not None and self._worker.is_running()

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker.wait(5000)
