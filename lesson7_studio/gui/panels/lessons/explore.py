"""Exploring a trained lesson model: the classifier's probabilities, confusion matrix and top
losses; the RNN's next-word predictions and the six models' accuracies side by side.

Every number comes from :mod:`lesson7_studio.core.lessons` as numpy arrays or plain values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core import lessons

from ...errors import show_error
from ...widgets.common import button, debouncer, human_count, label
from ...widgets.qimage import to_qpixmap

TOP_WORDS = 6
LOSS_COLUMNS = 3
DEFAULT_PROMPT = "eight thousand one , eight thousand"


def _digit_pixmap(arr: np.ndarray, scale: int) -> QPixmap:
    pix = to_qpixmap(np.ascontiguousarray(arr))
    return pix.scaled(pix.width() * scale, pix.height() * scale, Qt.AspectRatioMode.KeepAspectRatio,
                      Qt.TransformationMode.FastTransformation)


def _bar(value: float) -> QProgressBar:
    bar = QProgressBar()
    bar.setRange(0, 1000)
    bar.setValue(int(round(value * 1000)))
    bar.setFormat(f"{value:.1%}")
    bar.setTextVisible(True)
    bar.setMaximumHeight(18)
    return bar


def _table(cols: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(cols))
    t.setHorizontalHeaderLabels(cols)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setAlternatingRowColors(True)
    return t


class ProbabilityTable(QTableWidget):
    """Rows of (name, probability bar), likeliest first."""

    def __init__(self, first: str) -> None:
        super().__init__(0, 2)
        self.setHorizontalHeaderLabels([first, "probability"])
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setDefaultSectionSize(24)
        self.rows: list[tuple[str, float]] = []

    def set_rows(self, rows: list[tuple[str, float]]) -> None:
        self.rows = list(rows)
        self.setRowCount(len(rows))
        for i, (name, p) in enumerate(rows):
            item = QTableWidgetItem(name)
            f = item.font()
            f.setBold(i == 0)
            item.setFont(f)
            self.setItem(i, 0, item)
            self.setCellWidget(i, 1, _bar(p))


class ImageProbe(QLabel):
    """Shows the probed image large; accepts a dropped image file."""

    dropped = Signal(str)

    def __init__(self) -> None:
        super().__init__("Drop an image here\nor pick one")
        self.setObjectName("imageProbe")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFixedSize(168, 168)
        self.setAcceptDrops(True)
        self.setStyleSheet("QLabel#imageProbe { border: 2px dashed #a9b4c2; border-radius: 6px; color: #5c6676;"
                           " background: #f6f8fa; }")

    def show_array(self, arr: np.ndarray) -> None:
        side = max(arr.shape[0], arr.shape[1])
        self.setPixmap(_digit_pixmap(arr, max(1, 160 // max(side, 1))))

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.dropped.emit(urls[0])
            event.acceptProposedAction()


class ClassifierView(QWidget):
    """Probabilities of a picked image, the validation confusion matrix and the top losses."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = None
        self.interp = None
        self.title = label("Train a classifier (or open a run in the Runs tab) to explore it here.", "hint", wrap=True)
        self.probe = ImageProbe()
        self.probe.dropped.connect(self.probe_image)
        self.pick_button = button("Pick image…", tooltip="Classify an image file")
        self.pick_button.clicked.connect(self._pick)
        self.probs = ProbabilityTable("class")
        self.probe_caption = label("", "hint", wrap=True)
        left = QVBoxLayout()
        left.addWidget(self.probe, 0, Qt.AlignmentFlag.AlignHCenter)
        left.addWidget(self.pick_button)
        left.addWidget(self.probe_caption)
        left.addWidget(self.probs, 1)
        lw = QWidget()
        lw.setLayout(left)
        lw.setMinimumWidth(220)
        lw.setMaximumWidth(300)

        self.confusion = QTableWidget(0, 0)
        self.confusion.setObjectName("confusionMatrix")
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.confusion.setShowGrid(False)
        self.confusion.horizontalHeader().setDefaultSectionSize(38)
        self.confusion.verticalHeader().setDefaultSectionSize(26)
        self.confusion.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustToContents)
        self.accuracy_label = label("", "metric")
        self.confused_label = label("", "hint", wrap=True)
        cbox = QGroupBox("Confusion matrix (validation; rows: actual, columns: predicted)")
        cl = QVBoxLayout(cbox)
        cl.addWidget(self.accuracy_label)
        cl.addWidget(self.confusion, 0, Qt.AlignmentFlag.AlignLeft)
        cl.addWidget(self.confused_label)

        self.losses_box = QGroupBox("Top losses: actual → predicted, loss · p(actual); click one")
        self.losses_grid = QGridLayout(self.losses_box)
        self.losses_grid.setSpacing(6)
        self.loss_buttons: list[QPushButton] = []

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(cbox)
        rl.addWidget(self.losses_box)
        rl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(right)

        split = QSplitter()
        split.addWidget(lw)
        split.addWidget(scroll)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addWidget(split, 1)
        self._set_enabled(False)

    def _set_enabled(self, on: bool) -> None:
        self.pick_button.setEnabled(on)
        self.probe.setAcceptDrops(on)

    def set_run(self, run: str | Path) -> None:
        """Load the run's model and its saved interpretation."""
        self.model = lessons.load_lesson_model(run)
        summary = self.model.info.get("summary", {})
        acc = (summary.get("metrics") or {}).get("accuracy")
        self.title.setText(f"<b>{self.model.name}</b> · {human_count(self.model.params)} parameters · run "
                           f"{Path(run).name}" + (f" · accuracy {acc:.4f}" if acc is not None else ""))
        self._set_enabled(True)
        try:
            self.interp = lessons.read_interpretation(run)
        except Exception:  # noqa: BLE001 - an unfinished run has no interpretation yet
            self.interp = None
        self._fill_confusion()
        self._fill_losses()

    def _fill_confusion(self) -> None:
        it = self.interp
        t = self.confusion
        if it is None:
            t.setRowCount(0)
            t.setColumnCount(0)
            self.accuracy_label.setText("")
            self.confused_label.setText("The confusion matrix appears when the run has finished.")
            return
        n = len(it.classes)
        t.setRowCount(n)
        t.setColumnCount(n)
        t.setHorizontalHeaderLabels(it.classes)
        t.setVerticalHeaderLabels(it.classes)
        rows = it.confusion.sum(axis=1, keepdims=True).clip(min=1)
        share = it.confusion / rows
        for i in range(n):
            for j in range(n):
                v = int(it.confusion[i, j])
                item = QTableWidgetItem(str(v) if v else "")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                s = float(share[i, j])
                if i == j:
                    color = QColor.fromRgbF(1 - 0.75 * s, 1 - 0.45 * s, 1 - 0.1 * s)
                else:
                    s = min(1.0, s * 8)  # mistakes are rare: make them visible
                    color = QColor.fromRgbF(1, 1 - 0.6 * s, 1 - 0.65 * s) if v else QColor("#ffffff")
                item.setBackground(QBrush(color))
                if i == j and s > 0.6:
                    item.setForeground(QBrush(QColor("#ffffff")))
                t.setItem(i, j, item)
        t.resizeColumnsToContents()
        for j in range(n):
            t.setColumnWidth(j, max(38, t.columnWidth(j)))
        self.accuracy_label.setText(f"Accuracy {it.accuracy:.4f} on {it.n:,} validation images")
        pairs = it.most_confused()[:6]
        self.confused_label.setText(
            "Most confused (actual → predicted): " + ", ".join(f"{a} → {p} ({c})" for a, p, c in pairs)
            if pairs else "No mistakes on the validation set.")

    def _fill_losses(self) -> None:
        while self.losses_grid.count():
            w = self.losses_grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.loss_buttons = []
        it = self.interp
        if it is None:
            return
        for k in range(len(it.top_loss)):
            cap = (f"{it.classes[it.top_actual[k]]} → {it.classes[it.top_pred[k]]}\n"
                   f"{it.top_loss[k]:.2f} · {it.top_prob[k]:.2f}")
            b = QPushButton(cap)
            b.setIcon(_digit_pixmap(it.top_images[k], 2))
            b.setIconSize(QSize(48, 48))
            b.setFlat(True)
            b.setToolTip("Show this image's class probabilities")
            b.clicked.connect(lambda _c=False, k=k: self.probe_array(self.interp.top_images[k],
                                                                      f"top loss {k + 1}"))
            self.losses_grid.addWidget(b, k // LOSS_COLUMNS, k % LOSS_COLUMNS)
            self.loss_buttons.append(b)

    def _pick(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Classify an image", "", "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp)")
        if path:
            self.probe_image(path)

    def probe_image(self, path: str) -> None:
        if self.model is None:
            return
        try:
            probs, classes = lessons.classify(self.model, [path])
            from lesson7_studio.core.lessons.images import read_image

            arr = read_image(path, int(self.model.info.get("size", 28)), int(self.model.info.get("channels", 1)))
        except Exception as exc:  # noqa: BLE001 - shown in the one error dialog
            show_error(self, exc, context="This image cannot be classified")
            return
        self._show_probe(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0), probs[0], classes, Path(path).name)

    def probe_array(self, arr: np.ndarray, caption: str) -> None:
        if self.model is None:
            return
        probs, classes = lessons.classify(self.model, [arr])
        self._show_probe(arr, probs[0], classes, caption)

    def _show_probe(self, arr: np.ndarray, probs: np.ndarray, classes: list[str], caption: str) -> None:
        self.probe.show_array(arr)
        order = np.argsort(-probs)
        self.probs.set_rows([(classes[i], float(probs[i])) for i in order])
        self.probe_caption.setText(f"{caption}: <b>{classes[order[0]]}</b> ({probs[order[0]]:.1%})")


class NumbersView(QWidget):
    """Type the start of a sequence, see the next words; the six models' accuracies below."""

    train_requested = Signal(str)  # arch

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = None
        self.runs_root: Path | None = None
        self.title = label("Train a human-numbers model (or open a run in the Runs tab) to explore it here.",
                           "hint", wrap=True)
        self.prompt = QLineEdit(DEFAULT_PROMPT)
        self.prompt.setObjectName("numbersPrompt")
        self.prompt.setPlaceholderText("the start of a sequence, e.g. " + DEFAULT_PROMPT)
        self._debounce = debouncer(self, 150, self.update_predictions)
        self.prompt.textChanged.connect(lambda _t: self._debounce.start())
        self.words = ProbabilityTable("next word")
        self.words.setMinimumHeight(self.words.horizontalHeader().sizeHint().height() + TOP_WORDS * 24 + 4)
        self.continued = label("", "", wrap=True)
        self.continued.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message = label("", "warn", wrap=True)
        self.message.setVisible(False)
        pbox = QGroupBox("Next-word predictions")
        pl = QVBoxLayout(pbox)
        row = QHBoxLayout()
        row.addWidget(QLabel("Sequence"))
        row.addWidget(self.prompt, 1)
        pl.addLayout(row)
        pl.addWidget(self.message)
        pl.addWidget(self.words, 1)
        pl.addWidget(self.continued)

        self.table = _table(["Model", "Parameters", "Notebook", "This project", "Epochs", "Status"])
        self.table.setObjectName("progressionTable")
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustToContents)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.train_button = button("Train the selected model", tooltip="Pick this model in the form on the left")
        self.train_button.clicked.connect(self._train_selected)
        gbox = QGroupBox("The lesson's progression: validation accuracy of each model")
        gl = QVBoxLayout(gbox)
        gl.addWidget(self.table)
        gl.addWidget(self.train_button, 0, Qt.AlignmentFlag.AlignLeft)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addWidget(pbox, 1)
        lay.addWidget(gbox)
        self.prompt.setEnabled(False)

    def set_run(self, run: str | Path) -> None:
        self.model = lessons.load_lesson_model(run)
        summary = self.model.info.get("summary", {})
        acc = (summary.get("metrics") or {}).get("accuracy")
        self.title.setText(f"<b>{self.model.name}</b> · {human_count(self.model.params)} parameters · run "
                           f"{Path(run).name}" + (f" · accuracy {acc:.4f}" if acc is not None else ""))
        self.prompt.setEnabled(True)
        self.update_predictions()

    def update_predictions(self) -> None:
        if self.model is None:
            return
        text = self.prompt.text()
        try:
            words = lessons.next_words(self.model, text, k=TOP_WORDS)
            more = lessons.continue_text(self.model, text, 12)
        except Exception as exc:  # noqa: BLE001 - unknown words: say so inline, no dialog while typing
            self.message.setText(str(exc))
            self.message.setVisible(True)
            self.words.set_rows([])
            self.continued.setText("")
            return
        self.message.setText("")
        self.message.setVisible(False)
        self.words.set_rows(words)
        self.continued.setText(f"Continues as: <i>{text.strip()}</i> <b>{more}</b>")

    def refresh_table(self, root: Path | None = None) -> None:
        """Fill the six models' row from the lesson runs under ``root``."""
        from lesson7_studio.core import models

        if root is not None:
            self.runs_root = root
        rows = lessons.progression(self.runs_root) if self.runs_root else []
        self.table.setRowCount(len(rows))
        best = max((r["accuracy"] for r in rows if r["accuracy"] is not None), default=None)
        for i, r in enumerate(rows):
            here = f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "—"
            cells = [r["arch"], human_count(models.describe(r["arch"]).params), f"{r['notebook_accuracy']:.4f}",
                     here, f"{r['epochs_done']} / {r['epochs']}", r["status"] or "not trained"]
            for j, c in enumerate(cells):
                item = QTableWidgetItem(c)
                item.setData(Qt.ItemDataRole.UserRole, r["arch"])
                if j == 3 and r["accuracy"] is not None and r["accuracy"] == best:
                    f = item.font()
                    f.setBold(True)
                    item.setFont(f)
                if j in (1, 2, 3, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if r["run"]:
                    item.setToolTip(r["run"])
                self.table.setItem(i, j, item)
        # all six rows in view: the progression is the point
        h = self.table.horizontalHeader().height() + 2 * self.table.frameWidth()
        self.table.setFixedHeight(h + sum(self.table.rowHeight(i) for i in range(self.table.rowCount())))

    def table_rows(self) -> list[list[str]]:
        return [[self.table.item(i, j).text() for j in range(self.table.columnCount())]
                for i in range(self.table.rowCount())]

    def _train_selected(self) -> None:
        items = self.table.selectedItems()
        if items:
            self.train_requested.emit(items[0].data(Qt.ItemDataRole.UserRole))
