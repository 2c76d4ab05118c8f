"""The Restore panel's view: the preview of one image, input and result side by side."""

from __future__ import annotations

from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ...widgets.image_view import SplitView, ZoomBar


class PreviewBox(QGroupBox):
    """A split view of the input and its restoration, the Preview button and a line about it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Preview", parent)
        lay = QVBoxLayout(self)
        self.preview = SplitView(self, before_label="Input", after_label="Restored",
                                 placeholder="Press \u201cPreview first image\u201d to see what the model "
                                             "does before restoring the whole batch.")
        self.preview.setAcceptDrops(False)
        self.preview.viewport().setAcceptDrops(False)
        lay.addWidget(self.preview, 1)
        row = QHBoxLayout()
        self.preview_button = QPushButton("Preview first image", self)
        self.preview_button.setToolTip("Restore the first (or the selected) file and show it here")
        row.addWidget(self.preview_button)
        self.preview_label = QLabel("", self)
        row.addWidget(self.preview_label, 1)
        row.addWidget(ZoomBar(self.preview, self))
        lay.addLayout(row)

    def show_result(self, name: str, res) -> None:
        """Show a core.restore Preview (input, restored, seconds) of the file ``name``."""
        img, out, seconds = res
        self.preview.set_images(img, out, before_label=f"Input {img.rgb.shape[1]}\u00d7{img.rgb.shape[0]}",
                                after_label=f"Restored {out.rgb.shape[1]}\u00d7{out.rgb.shape[0]}")
        self.preview_label.setText(f"{name}: {seconds:.1f} s")
