"""Compare panel: restore one image with one or several models and look at the difference.

Open any image (file dialog, drop, or a dataset's valid split, whose high-resolution image is
then the ground truth), restore it in a worker, and compare any two of: the input (bicubic
upscaled), the ground truth and each model's result, as a split view, side by side with synced
zoom and pan, flicker, or an amplified difference heatmap. Metrics: PSNR/SSIM (Y and RGB)
against the ground truth when there is one, else each model against bicubic.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core.events import Event, Progress, check, emit

from ..widgets.heatmap import HeatmapLegend, auto_gain, difference_map, difference_overlay
from ..widgets.image_view import FlickerView, ImageView, SplitView, ZoomBar
from ..widgets.qimage import to_uint8
from ..widgets.common import LinesLabel, invalidate_layouts

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp *.gif *.heic *.heif);;All files (*)"
MODEL_FILTER = "Models (*.safetensors *.pth *.pt *.ckpt *.onnx);;All files (*)"
INPUT, GT, BICUBIC = "input", "gt", "bicubic"
TILE_CHOICES = [("Auto", None), ("128 px", 128), ("256 px", 256), ("512 px", 512),
                ("1024 px", 1024)]
MODES = [("split", "Split"), ("side", "Side by side"), ("flicker", "Flicker"), ("diff", "Difference")]
SHORT_MODES = {"side": "Side", "diff": "Diff"}  # in a narrow panel, to leave room for Before/After
COMPACT_BELOW = 1000  # panel width (px) under which the short names are used


# ----------------------------------------------------------------------------- worker side
@dataclass
class Loaded(Event):
    """The input (and ground truth) were read."""

    input: Any  # core.images.ImageData
    gt: Any = None


@dataclass
class Restored(Event):
    """One image to compare: a model's result or the bicubic baseline, with its metrics."""

    key: str  # BICUBIC or the model file path
    label: str
    image: Any  # ImageData (model result) or HxWx3 float32 (bicubic)
    display: np.ndarray  # HxWx3 uint8 at the reference size
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""


def bicubic_upscale(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """HxWx3 image -> height x width x 3 float32 in [0,1], PIL bicubic (the baseline that
    ``lesson7-studio eval`` reports). uint8 is resized as 8-bit RGB, anything else per channel."""
    from PIL import Image

    a = np.asarray(rgb)
    if a.shape[:2] == (height, width):
        return to_float01(a)
    if a.dtype == np.uint8:
        out = np.asarray(Image.fromarray(a[:, :, :3]).resize((width, height), Image.Resampling.BICUBIC))
        return out.astype(np.float32) / 255.0
    f = to_float01(a)
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(f[:, :, c]), mode="F")
                        .resize((width, height), Image.Resampling.BICUBIC)) for c in range(3)]
    return np.clip(np.stack(chans, axis=2), 0.0, 1.0).astype(np.float32)


def to_float01(a: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float image as float32 in [0, 1]."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    return np.clip(a.astype(np.float32), 0.0, 1.0)


def fit_to(arr: np.ndarray, height: int, width: int) -> tuple[np.ndarray, str]:
    """``arr`` at height x width: cropped when it is a few pixels larger (rounding of odd sizes),
    padded by edge pixels when a few smaller, resized otherwise. Returns (array, note)."""
    h, w = arr.shape[:2]
    if (h, w) == (height, width):
        return arr, ""
    if abs(h - height) <= 8 and abs(w - width) <= 8:
        a = arr[:height, :width]
        ph, pw = height - a.shape[0], width - a.shape[1]
        if ph or pw:
            a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
        return a, ""
    out = bicubic_upscale(arr, height, width)
    note = f"resized from {w}x{h} to {width}x{height} to compare"
    return (out * 255 + 0.5).astype(np.uint8) if arr.dtype == np.uint8 else out, note


TABLE_ROWS = 4  # rows the metrics table shows without scrolling: bicubic and three models


def image_metrics(out: np.ndarray, ref: np.ndarray, crop: int = 0, *, full: bool = True) -> dict[str, float]:
    """PSNR / SSIM of ``out`` against ``ref`` (float HxWx3 in [0,1]): Y and RGB (``full``) or RGB."""
    from lesson7_studio.core import metrics

    h, w = ref.shape[:2]
    crop = crop if h > 4 * crop and w > 4 * crop else 0
    res = {"psnr": metrics.psnr(out, ref, crop=crop), "ssim": metrics.ssim(out, ref, crop=crop)}
    if full:
        res["psnr_y"] = metrics.psnr(out, ref, y_channel=True, crop=crop)
        res["ssim_y"] = metrics.ssim(out, ref, y_channel=True, crop=crop)
    return res


def compare_job(input_path: Path | None, gt_path: Path | None, models: list[tuple[str, Path]], *,
                loaded: tuple[Any, Any] | None = None, cache: dict | None = None, tile: int | None = None,
                device: str | None = None, on_event=None, cancel=None) -> int:
    """Load the input (unless ``loaded``), then restore it with each model, emitting Loaded and
    Restored events (bicubic first). Returns the number of models run."""
    from lesson7_studio.core import images, restore

    if loaded is None:
        emit(on_event, Progress(0, 0, message=f"Reading {Path(input_path).name}"))
        img = images.load_image(input_path)
        gt = images.load_image(gt_path) if gt_path is not None else None
        emit(on_event, Loaded(img, gt))
    else:
        img, gt = loaded
    check(cancel)
    in_h = img.rgb.shape[0]
    gt_f = images.to_float(gt) if gt is not None else None
    ref_hw: tuple[int, int] | None = gt_f.shape[:2] if gt_f is not None else None
    bic: np.ndarray | None = None
    crop = 0

    def baseline(h: int, w: int) -> np.ndarray:
        b = bicubic_upscale(img.rgb, h, w)
        scale = max(1, round(h / in_h))
        m = image_metrics(b, gt_f, crop=scale) if gt_f is not None else {}
        emit(on_event, Restored(BICUBIC, f"Bicubic \u00d7{scale}" if scale > 1 else "Input", b,
                                (b * 255 + 0.5).astype(np.uint8), m))
        return b

    if ref_hw is not None:
        bic = baseline(*ref_hw)
        crop = max(1, round(ref_hw[0] / in_h))
    cache = cache if cache is not None else {}
    for i, (label, path) in enumerate(models):
        check(cancel)
        emit(on_event, Progress(i, len(models), message=f"Loading {label}"))
        key = (str(path), device)
        model = cache.get(key)
        if model is None:
            model = restore.load_any_model(path, device=device)
            cache[key] = model
        check(cancel)
        emit(on_event, Progress(i, len(models), message=f"Restoring with {label}"))
        t0 = time.perf_counter()
        out = restore.restore_image(model, img, tile=tile, device=device, on_event=on_event, cancel=cancel)
        seconds = time.perf_counter() - t0
        out_f = images.to_float(out)
        if ref_hw is None:
            ref_hw = out_f.shape[:2]
            crop = max(1, round(ref_hw[0] / in_h))
            bic = baseline(*ref_hw)
        shown, note = fit_to(out_f, *ref_hw)
        if gt_f is not None:
            m = image_metrics(shown, gt_f, crop=crop) if not note else {}
        else:
            m = {"psnr_bic": image_metrics(shown, bic, crop=crop, full=False)["psnr"]}
        emit(on_event, Restored(str(path), label, out, (shown * 255 + 0.5).astype(np.uint8), m, seconds, note))
    return len(models)


# ----------------------------------------------------------------------------- helpers
def dataset_pair(path: Path) -> tuple[Path, Path] | None:
    """(lr, hr) when ``path`` lies in a paired dataset's lr/ or hr/ folder, else None."""
    path = Path(path).resolve()
    for parent in path.parents:
        if parent.name in ("lr", "hr") and (parent.parent / "dataset.json").is_file():
            root = parent.parent
            rel = path.relative_to(parent)
            lr = _find_same_stem(root / "lr", rel)
            hr = _find_same_stem(root / "hr", rel)
            if lr is not None and hr is not None:
                return lr, hr
            return None
    return None


def _find_same_stem(folder: Path, rel: Path) -> Path | None:
    """``folder/rel``, or a file with the same stem and another extension (lr PNG for hr JPEG)."""
    p = folder / rel
    if p.is_file():
        return p
    d = p.parent
    if d.is_dir():
        for q in sorted(d.glob(f"{p.stem}.*")):
            if q.is_file() and not q.name.startswith("."):
                return q
    return None


def run_checkpoints(project) -> list[tuple[str, Path, str]]:
    """(label, path, "checkpoint") of the newest generator checkpoint of each run that has no
    final model yet (a run in progress or stopped), so that it can be compared too."""
    out = []
    try:
        runs = project.list_runs()
    except OSError:
        return out
    for run in runs:
        if run.has_model:
            continue
        folder = run.path / "checkpoints"
        best, best_step = None, -1
        for p in folder.glob("*-s*.safetensors") if folder.is_dir() else []:
            if p.name.startswith(".") or p.name.endswith(".critic.safetensors"):
                continue
            try:
                step = int(p.stem.rsplit("-s", 1)[1])
            except (IndexError, ValueError):
                continue
            if step > best_step:
                best, best_step = p, step
        if best is not None:
            out.append((f"Run: {run.name} (step {best_step})", best, "checkpoint"))
    return out


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "\u2014"
    if v == float("inf"):
        return "\u221e"
    return f"{v:.2f}{unit}" if unit == " dB" else f"{v:.4f}"


@dataclass
class _Source:
    label: str
    display: np.ndarray  # uint8 HxWx3 at the reference size


class ElidedComboBox(QComboBox):
    """A combo box that elides a long current entry in the middle (the full text is its tooltip)
    and adjusts to ``min_chars`` characters rather than to its longest entry."""

    def __init__(self, parent: QWidget | None = None, min_chars: int = 10, tooltip: str = "") -> None:
        super().__init__(parent)
        self._base_tip = tooltip
        self._tip_for: str | None = None
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(min_chars)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.currentIndexChanged.connect(lambda _i: self._update_tip())
        self._update_tip()

    def _update_tip(self) -> None:
        text = self.currentText()
        self._tip_for = text
        self.setToolTip("\n".join(t for t in (text, self._base_tip) if t))

    def paintEvent(self, _event) -> None:
        if self._tip_for != self.currentText():
            self._update_tip()  # items changed while signals were blocked
        p = QStylePainter(self)
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        if self.currentIndex() < 0 and self.placeholderText():
            opt.palette.setBrush(QPalette.ColorRole.ButtonText, opt.palette.placeholderText())
            opt.currentText = self.placeholderText()
        p.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, opt)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        avail = field.width() - 4
        if not opt.currentIcon.isNull():
            avail -= opt.iconSize.width() + 4
        opt.currentText = self.fontMetrics().elidedText(opt.currentText, Qt.TextElideMode.ElideMiddle, max(avail, 8))
        p.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, opt)


class ComparePanel(QWidget):
    """Open an image, restore it with the chosen models, compare and save the result."""

    results_changed = Signal()

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAcceptDrops(True)
        self._paths: list[tuple[Path, Path | None]] = []  # (input, ground truth)
        self._current: tuple[Path, Path | None] | None = None
        self._loaded: tuple[Any, Any] | None = None
        self._sources: dict[str, _Source] = {}
        self._results: dict[str, Any] = {}  # model key -> restored ImageData
        self._metrics: dict[str, dict[str, float]] = {}
        self._notes: dict[str, str] = {}
        self._seconds: dict[str, float] = {}
        self._imported: list[Path] = [Path(p) for p in ctx.settings.value("models/imported", []) if Path(p).is_file()]
        self._cache: dict = {}
        self._worker = None
        self._pending: bool = False  # restore again when the running worker ends
        self._pending_models: list[tuple[str, Path]] = []
        self._job_item: tuple[Path, Path | None] | None = None
        self._job_models: list[tuple[str, Path]] = []
        self._mode = "split"
        self._build()
        self.refresh_models()
        self.refresh_datasets()
        ctx.models_changed.connect(self.refresh_models)
        ctx.project_changed.connect(self._on_project_changed)
        if hasattr(ctx, "datasets_changed"):
            ctx.datasets_changed.connect(self._on_datasets_changed)
        self._update_controls()
        invalidate_layouts(self)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        root = QHBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        root.setSpacing(8)

        side = QWidget(self)
        # the layout gives the minimum width (an explicit smaller one would clip the controls)
        side.setMaximumWidth(330)
        side.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.setSpacing(8)

        # image
        g_img = QGroupBox("Image", side)
        gl = QVBoxLayout(g_img)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open image\u2026", g_img)
        self.open_button.setToolTip("Open one or more images (or drop them on this panel)")
        self.open_button.clicked.connect(self._open_dialog)
        row.addWidget(self.open_button)
        row.addStretch(1)
        gl.addLayout(row)
        row = QHBoxLayout()
        self.image_combo = ElidedComboBox(g_img, 14, "Images opened in this panel")
        self.image_combo.activated.connect(self._image_chosen)
        row.addWidget(self.image_combo, 1)
        gl.addLayout(row)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.dataset_combo = ElidedComboBox(g_img, 10, "A paired dataset of this project: its valid images "
                                                       "have a ground truth")
        self.dataset_combo.currentIndexChanged.connect(self._dataset_changed)
        form.addRow("Dataset", self.dataset_combo)
        self.valid_combo = ElidedComboBox(g_img, 10, "Pick a validation image: the crappified version is "
                                                     "restored and the original is the ground truth")
        self.valid_combo.setPlaceholderText("Pick one\u2026")
        self.valid_combo.activated.connect(self._valid_chosen)
        valid_caption = QLabel("Valid", g_img)
        valid_caption.setToolTip("A validation image of the dataset (it has a ground truth)")
        form.addRow(valid_caption, self.valid_combo)
        gl.addLayout(form)
        # two lines whatever the image (name + size, ground truth): the Models list never moves
        self.image_info = LinesLabel("Open an image or drop one here.", 2, g_img)
        self.image_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        gl.addWidget(self.image_info)
        sl.addWidget(g_img)

        # models
        g_mod = QGroupBox("Models", side)
        ml = QVBoxLayout(g_mod)
        self.model_list = QListWidget(g_mod)
        self.model_list.setToolTip("Tick the models to run; each result can be compared")
        self.model_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.model_list.setMinimumHeight(60)
        self.model_list.setMaximumHeight(170)
        self.model_list.itemChanged.connect(lambda _it: self._update_controls())
        ml.addWidget(self.model_list, 1)
        row = QHBoxLayout()
        self.import_button = QPushButton("Import model\u2026", g_mod)
        self.import_button.setToolTip("A .safetensors of this app, or a .pth/.onnx upscaler")
        self.import_button.clicked.connect(self._import_dialog)
        row.addWidget(self.import_button)
        row.addStretch(1)
        ml.addLayout(row)
        row = QHBoxLayout()
        tiles_caption = QLabel("Tiles", g_mod)
        row.addWidget(tiles_caption)
        self.tile_combo = QComboBox(g_mod)
        for text, val in TILE_CHOICES:
            self.tile_combo.addItem(text, val)
        self.tile_combo.setToolTip("Restore large images in tiles to save memory")
        tiles_caption.setToolTip(self.tile_combo.toolTip())
        row.addWidget(self.tile_combo, 1)
        ml.addLayout(row)
        self.auto_check = QCheckBox("Restore on open", g_mod)
        self.auto_check.setToolTip("Restore with the ticked models as soon as an image is opened")
        self.auto_check.setChecked(bool(self.ctx.settings.value("compare/auto_restore", True)))
        self.auto_check.toggled.connect(lambda v: self.ctx.settings.set_value("compare/auto_restore", bool(v)))
        ml.addWidget(self.auto_check)
        row = QHBoxLayout()
        self.restore_button = QPushButton("Restore", g_mod)
        self.restore_button.setDefault(True)
        self.restore_button.clicked.connect(self.restore_now)
        row.addWidget(self.restore_button, 1)
        self.cancel_button = QPushButton("Cancel", g_mod)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.cancel_button)
        ml.addLayout(row)
        self.progress = QProgressBar(g_mod)
        self.progress.setTextVisible(True)
        self.progress.setMaximumHeight(18)
        ml.addWidget(self.progress)
        self.status_label = QLabel("", g_mod)
        self.status_label.setWordWrap(True)
        ml.addWidget(self.status_label)
        sl.addWidget(g_mod)
        sl.addStretch(1)

        self.save_button = QPushButton("Save result\u2026", side)
        self.save_button.setToolTip("Save the image shown as After (full resolution, metadata kept)")
        self.save_button.clicked.connect(self._save_dialog)
        sl.addWidget(self.save_button)
        # a little wider than its contents need, so that names read well; never below their minimum
        side.setMinimumWidth(max(280, sl.minimumSize().width()))
        root.addWidget(side)

        # views
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.setChildrenCollapsible(False)
        top = QWidget(right)
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.setSpacing(4)
        bar = QHBoxLayout()
        bar.setSpacing(4)
        self.mode_group = QButtonGroup(self)
        self.mode_group.setExclusive(True)
        self.mode_buttons: dict[str, QToolButton] = {}
        for i, (key, text) in enumerate(MODES):
            b = QToolButton(top)
            b.setText(text)
            b.setCheckable(True)
            b.setObjectName(f"mode_{key}")
            self.mode_group.addButton(b, i)
            self.mode_buttons[key] = b
            bar.addWidget(b)
        self.mode_buttons["split"].setToolTip("Split: one image, divided; drag the white line")
        self.mode_buttons["side"].setToolTip("Side by side: two views that zoom and pan together")
        self.mode_buttons["flicker"].setToolTip("Flicker: alternate the two images in place (space toggles)")
        self.mode_buttons["diff"].setToolTip("Difference: where After differs from Before, amplified")
        self.mode_group.idClicked.connect(lambda i: self.set_view_mode(MODES[i][0]))
        bar.addSpacing(10)
        self.before_caption = QLabel("Before", top)
        bar.addWidget(self.before_caption)
        self.before_combo = ElidedComboBox(top, 10, "The image on the left / the reference")
        self.before_combo.currentIndexChanged.connect(lambda _i: self._refresh_views())
        bar.addWidget(self.before_combo, 2)
        bar.addWidget(QLabel("After", top))
        self.after_combo = ElidedComboBox(top, 10, "The image on the right (saved by Save result)")
        self.after_combo.currentIndexChanged.connect(lambda _i: self._refresh_views())
        bar.addWidget(self.after_combo, 3)
        tl.addLayout(bar)

        self.stack = QStackedWidget(top)
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
            v.setAcceptDrops(False)
            v.viewport().setAcceptDrops(False)
        for v in views[1:]:
            self.split_view.link(v)
        tl.addWidget(self.stack, 1)

        opts = QHBoxLayout()
        opts.setSpacing(6)
        self.hint_label = QLabel("", top)
        self.hint_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        opts.addWidget(self.hint_label)
        self.flicker_check = QCheckBox("Alternate", top)
        self.flicker_check.setChecked(True)
        self.flicker_check.toggled.connect(self._flicker_toggled)
        opts.addWidget(self.flicker_check)
        self.flicker_speed = QSpinBox(top)
        self.flicker_speed.setRange(100, 3000)
        self.flicker_speed.setSingleStep(100)
        self.flicker_speed.setValue(600)
        self.flicker_speed.setSuffix(" ms")
        self.flicker_speed.valueChanged.connect(self.flicker_view.set_interval)
        opts.addWidget(self.flicker_speed)
        self.switch_button = QToolButton(top)
        self.switch_button.setText("Switch")
        self.switch_button.setToolTip("Show the other image (space)")
        self.switch_button.clicked.connect(self.flicker_view.next)
        opts.addWidget(self.switch_button)
        self.gain_label = QLabel("Amplify", top)
        opts.addWidget(self.gain_label)
        self.gain_spin = QSpinBox(top)
        self.gain_spin.setRange(1, 50)
        self.gain_spin.setValue(int(self.ctx.settings.value("compare/gain", 5)))
        self.gain_spin.setPrefix("\u00d7")
        self.gain_spin.setToolTip("Multiply the differences so small ones become visible")
        self.gain_spin.valueChanged.connect(self._gain_changed)
        opts.addWidget(self.gain_spin)
        self.auto_gain_check = QCheckBox("Auto", top)
        self.auto_gain_check.setToolTip("Pick the amplification so the largest differences use the whole colour scale")
        self.auto_gain_check.setChecked(bool(self.ctx.settings.value("compare/auto_gain", True)))
        self.auto_gain_check.toggled.connect(self._auto_gain_toggled)
        opts.addWidget(self.auto_gain_check)
        self.legend = HeatmapLegend(top, colormap="inferno")
        self.legend.setMaximumWidth(320)
        opts.addWidget(self.legend)
        opts.addStretch(1)
        self.zoom_bar = ZoomBar(self.split_view, top)
        opts.addWidget(self.zoom_bar)
        tl.addLayout(opts)
        right.addWidget(top)

        self.metrics_table = QTableWidget(0, 0, right)
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.metrics_table.verticalHeader().setVisible(False)
        self.metrics_table.setAlternatingRowColors(True)
        self.metrics_table.setMinimumHeight(70)
        self.metrics_table.setVisible(False)  # until there is something to measure
        right.addWidget(self.metrics_table)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 0)
        right.setSizes([640, 100])
        root.addWidget(right, 1)
        self._right_splitter = right

        mode = str(self.ctx.settings.value("compare/mode", "split"))
        self.set_view_mode(mode if mode in dict(MODES) else "split")

    def _on_project_changed(self, _project) -> None:
        self.refresh_models()
        self.refresh_datasets()

    def _on_datasets_changed(self) -> None:
        self.refresh_datasets()
        # e.g. the demo dataset just got built while this panel is shown with nothing open
        if self._current is None and self.isVisible() and bool(self.ctx.settings.value("compare/open_sample", True)):
            self.open_dataset_sample()

    # ------------------------------------------------------------------ panel protocol
    def on_shown(self) -> None:
        self.refresh_datasets()
        if self._current is None and bool(self.ctx.settings.value("compare/open_sample", True)):
            self.open_dataset_sample()

    def open_dataset_sample(self, dataset: Path | str | None = None, index: int = 0) -> bool:
        """Open a dataset's valid image ``index`` (crappified input + ground truth); default: the
        demo dataset, else the first with valid images. False when there is none."""
        if dataset is not None:
            i = self.dataset_combo.findData(str(Path(dataset).resolve()))
            if i < 0:
                i = self.dataset_combo.findData(str(dataset))
        else:
            from lesson7_studio.core.project import DEMO_DATASET

            i = next((k for k in range(self.dataset_combo.count())
                      if self.dataset_combo.itemData(k) and Path(self.dataset_combo.itemData(k)).name == DEMO_DATASET),
                     0)
        if i < 0 or self.dataset_combo.itemData(i) is None:
            return False
        self.dataset_combo.setCurrentIndex(i)
        if not 0 <= index < self.valid_combo.count():
            return False
        self.valid_combo.setCurrentIndex(index)
        self._valid_chosen(index)
        return True

    def is_busy(self) -> bool:
        return self._worker is not None and self._worker.is_running()

    def shutdown(self) -> None:
        self._pending = False
        self.flicker_view.set_flicker(False)
        if self._worker is not None:
            self._worker.cancel()
            self._worker.wait(10000)

    # ------------------------------------------------------------------ models
    def refresh_models(self) -> None:
        checked = {self.model_list.item(i).data(Qt.ItemDataRole.UserRole)
                   for i in range(self.model_list.count())
                   if self.model_list.item(i).checkState() == Qt.CheckState.Checked}
        first_time = self.model_list.count() == 0
        self.model_list.blockSignals(True)
        self.model_list.clear()
        choices = [(c.label, Path(c.path), getattr(c, "source", "")) for c in self.ctx.available_models()]
        choices += run_checkpoints(self.ctx.project)
        known = {p for _l, p, _s in choices}
        choices += [(f"File: {p.name}", p, "file") for p in self._imported if p not in known]
        for label, path, source in choices:
            it = QListWidgetItem(label)
            it.setData(Qt.ItemDataRole.UserRole, str(path))
            it.setToolTip(str(path))
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = str(path) in checked
            it.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.model_list.addItem(it)
        if (first_time or not checked) and self.model_list.count():
            # the starter model (listed first) is the default
            self.model_list.item(0).setCheckState(Qt.CheckState.Checked)
        self.model_list.blockSignals(False)
        self._update_controls()

    def selected_models(self) -> list[tuple[str, Path]]:
        out = []
        for i in range(self.model_list.count()):
            it = self.model_list.item(i)
            if it.checkState() == Qt.CheckState.Checked:
                out.append((it.text(), Path(it.data(Qt.ItemDataRole.UserRole))))
        return out

    def set_models(self, paths: list[Path | str]) -> None:
        """Tick exactly these models (adding files not listed yet)."""
        want = {str(Path(p)) for p in paths}
        for p in paths:
            self._add_imported(Path(p), check=False)
        for i in range(self.model_list.count()):
            it = self.model_list.item(i)
            on = it.data(Qt.ItemDataRole.UserRole) in want
            it.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self._update_controls()

    def _add_imported(self, path: Path, check: bool = True) -> None:
        for i in range(self.model_list.count()):
            it = self.model_list.item(i)
            if it.data(Qt.ItemDataRole.UserRole) == str(path):
                if check:
                    it.setCheckState(Qt.CheckState.Checked)
                return
        self._imported.append(path)
        self.ctx.settings.set_value("models/imported", [str(p) for p in self._imported][-20:])
        it = QListWidgetItem(f"File: {path.name}")
        it.setData(Qt.ItemDataRole.UserRole, str(path))
        it.setToolTip(str(path))
        it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        it.setCheckState(Qt.CheckState.Checked if check else Qt.CheckState.Unchecked)
        self.model_list.addItem(it)

    def _import_dialog(self) -> None:
        start = str(self.ctx.settings.value("compare/model_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", start, MODEL_FILTER)
        if path:
            self.ctx.settings.set_value("compare/model_dir", str(Path(path).parent))
            self._add_imported(Path(path))
            self._update_controls()

    # ------------------------------------------------------------------ datasets
    def refresh_datasets(self) -> None:
        current = self.dataset_combo.currentData()
        self.dataset_combo.blockSignals(True)
        self.dataset_combo.clear()
        try:
            datasets = self.ctx.project.list_datasets()
        except OSError:
            datasets = []
        for ds in datasets:
            if ds.n_valid:
                self.dataset_combo.addItem(ds.name, str(ds.path))
                self.dataset_combo.setItemData(self.dataset_combo.count() - 1,
                                               f"{ds.path}\n{ds.n_valid} valid image{'s' if ds.n_valid != 1 else ''}",
                                               Qt.ItemDataRole.ToolTipRole)
        if self.dataset_combo.count() == 0:
            self.dataset_combo.addItem("No dataset with valid images", None)
        idx = self.dataset_combo.findData(current)
        self.dataset_combo.setCurrentIndex(max(idx, 0))
        self.dataset_combo.blockSignals(False)
        self._dataset_changed()

    def _dataset_changed(self, *_a) -> None:
        self.valid_combo.clear()
        root = self.dataset_combo.currentData()
        self.dataset_combo.setEnabled(root is not None)
        if root is None:
            self.valid_combo.setEnabled(False)
            return
        try:
            meta = json.loads((Path(root) / "dataset.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        for rel in meta.get("valid", []):
            self.valid_combo.addItem(str(rel), str(rel))
        self.valid_combo.setEnabled(self.valid_combo.count() > 0)
        self._sync_valid_combo()

    def _sync_valid_combo(self) -> None:
        """Select the valid image that is shown, or nothing when the image came from elsewhere."""
        index = -1
        cur = self._current
        if cur is not None and cur[1] is not None:
            root = self.dataset_combo.currentData()
            found = self._valid_entry(cur)
            if found is not None and root is not None and Path(root).resolve() != found[0]:
                k = self.dataset_combo.findData(str(found[0]))
                if k < 0:
                    k = next((j for j in range(self.dataset_combo.count()) if self.dataset_combo.itemData(j)
                              and Path(self.dataset_combo.itemData(j)).resolve() == found[0]), -1)
                if k >= 0:
                    self.dataset_combo.setCurrentIndex(k)  # refills the valid combo and syncs it again
                    return
            if found is not None and root is not None and Path(root).resolve() == found[0]:
                index = self.valid_combo.findData(found[1])
        self.valid_combo.setCurrentIndex(index)

    @staticmethod
    def _valid_entry(item: tuple[Path, Path | None]) -> tuple[Path, str] | None:
        """(dataset root, rel) when ``item`` is the lr/hr pair of a dataset's valid image."""
        inp = Path(item[0]).resolve()
        for parent in inp.parents:
            if parent.name == "lr" and (parent.parent / "dataset.json").is_file():
                root = parent.parent
                try:
                    meta = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    return None
                rel = inp.relative_to(parent)
                for v in meta.get("valid", []):
                    if Path(v) == rel or Path(v).with_suffix("") == rel.with_suffix(""):
                        return root, str(v)
                return None
        return None

    def _valid_chosen(self, _i: int) -> None:
        root, rel = self.dataset_combo.currentData(), self.valid_combo.currentData()
        if root is None or rel is None:
            return
        lr = _find_same_stem(Path(root) / "lr", Path(rel))
        hr = _find_same_stem(Path(root) / "hr", Path(rel))
        if lr is None or hr is None:
            self._set_status(f"The pair for {rel} is missing in {root}.")
            return
        self.open_pair(lr, hr)

    # ------------------------------------------------------------------ opening images
    def open_images(self, paths) -> None:
        """Open these images (the first is shown). A dataset's lr/hr image opens as a pair."""
        items: list[tuple[Path, Path | None]] = []
        for p in paths:
            p = Path(p)
            pair = dataset_pair(p)
            items.append(pair if pair is not None else (p, None))
        if not items:
            return
        self._add_items(items)
        self._show_item(items[0])

    def open_pair(self, input_path, ground_truth) -> None:
        """Open ``input_path`` to restore with ``ground_truth`` as the reference."""
        item = (Path(input_path), Path(ground_truth) if ground_truth is not None else None)
        self._add_items([item])
        self._show_item(item)

    def _add_items(self, items: list[tuple[Path, Path | None]]) -> None:
        for it in items:
            if it not in self._paths:
                self._paths.append(it)
                label = it[0].name + ("  \u00b7 with GT" if it[1] is not None else "")
                self.image_combo.addItem(label)
                self.image_combo.setItemData(self.image_combo.count() - 1, str(it[0]), Qt.ItemDataRole.ToolTipRole)

    def _image_chosen(self, index: int) -> None:
        if 0 <= index < len(self._paths):
            self._show_item(self._paths[index])

    def _show_item(self, item: tuple[Path, Path | None]) -> None:
        self.image_combo.setCurrentIndex(self._paths.index(item))
        self._current = item
        self._sync_valid_combo()
        self._loaded = None
        self._sources.clear()
        self._results.clear()
        self._metrics.clear()
        self._notes.clear()
        self._seconds.clear()
        self.ctx.settings.set_value("compare/last_dir", str(item[0].parent))
        self._refresh_combos()
        self._refresh_views()
        self._refresh_table()
        models = self.selected_models() if self.auto_check.isChecked() else []
        self._start(models)

    def _open_dialog(self) -> None:
        start = str(self.ctx.settings.value("compare/last_dir", str(Path.home())))
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", start, IMAGE_FILTER)
        if paths:
            self.open_images(paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        paths = [p for p in paths if p.is_file()]
        if paths:
            event.acceptProposedAction()
            self.open_images(paths)

    # ------------------------------------------------------------------ restoring
    def restore_now(self) -> None:
        """Restore the current image with the ticked models."""
        if self._current is None:
            self._set_status("Open an image first.")
            return
        models = self.selected_models()
        if not models:
            self._set_status("Tick at least one model.")
            return
        self._start(models)

    def _start(self, models: list[tuple[str, Path]]) -> None:
        if self._current is None:
            return
        if self.is_busy():
            self._pending = True
            self._pending_models = models
            self._worker.cancel()
            return
        self._pending = False
        inp, gt = self._current
        self._job_models = models
        self._job_item = self._current
        # None (auto) while the start-up still detects the device: asking now would import torch here
        device = self.ctx.device if self.ctx.device_known else None
        keep = {(str(p), device) for _l, p in models}
        for k in [k for k in self._cache if k not in keep]:  # free models no longer ticked
            del self._cache[k]
        for _label, path in models:  # drop stale results of these models
            self._sources.pop(str(path), None)
            self._results.pop(str(path), None)
            self._metrics.pop(str(path), None)
        self.progress.setRange(0, 0)
        self.progress.setFormat("")
        self._set_status(f"Reading {inp.name}\u2026" if self._loaded is None else "Restoring\u2026")
        w = self.ctx.start_worker(compare_job, inp, gt, models, loaded=self._loaded, cache=self._cache,
                                  tile=self.tile_combo.currentData(), device=device)
        self._worker = w
        w.event.connect(self._on_event)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.done.connect(self._on_done)
        self._update_controls()

    def cancel(self) -> None:
        self._pending = False
        if self._worker is not None:
            self._worker.cancel()
            self._set_status("Cancelling\u2026")

    def _on_event(self, ev: Event) -> None:
        if getattr(self, "_job_item", None) != self._current:
            return  # a job for an image that is no longer shown (it is being cancelled)
        if isinstance(ev, Loaded):
            self._loaded = (ev.input, ev.gt)
            self._sources[INPUT] = _Source("Input", to_uint8(ev.input.rgb))
            if ev.gt is not None:
                self._sources[GT] = _Source("Ground truth", to_uint8(ev.gt.rgb))
            self._show_info()
            self._refresh_combos()
            self._refresh_views()
        elif isinstance(ev, Restored):
            self._sources[ev.key] = _Source(ev.label, ev.display)
            self._metrics[ev.key] = ev.metrics
            self._notes[ev.key] = ev.note
            self._seconds[ev.key] = ev.seconds
            if ev.key != BICUBIC:
                self._results[ev.key] = ev.image
                self._set_status(f"{ev.label}: {ev.seconds:.1f} s")
            self._refresh_combos(prefer_after=ev.key if ev.key != BICUBIC else None)
            self._refresh_views(keep_view=True)
            self._refresh_table()
            self.results_changed.emit()
        elif isinstance(ev, Progress):
            if ev.total > 0 and ev.stage != "":
                self.progress.setRange(0, ev.total)
                self.progress.setValue(ev.done)
                self.progress.setFormat(f"{ev.stage} %v/%m")
            if ev.message:
                self._set_status(ev.message)

    def _on_finished(self, n: int) -> None:
        if self._pending:
            return
        if n:
            total = sum(self._seconds.get(str(p), 0.0) for _l, p in self._job_models)
            self._set_status(f"Restored with {n} model{'s' if n > 1 else ''} in {total:.1f} s.")
        else:
            self._set_status("Tick a model and press Restore." if self.model_list.count()
                             else "No model yet: import one or train one.")

    def _on_failed(self, exc: BaseException) -> None:
        from ..errors import show_error

        if self._pending:
            return  # the image changed meanwhile; the new one is restored next
        self._set_status("Failed: " + str(getattr(exc, "message", exc)).splitlines()[0])
        show_error(self, exc, context="Restoring the image failed")

    def _on_cancelled(self) -> None:
        if not self._pending:
            self._set_status("Cancelled.")

    def _on_done(self) -> None:
        self._worker = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self._update_controls()
        if self._pending:
            self._start(self._pending_models)

    # ------------------------------------------------------------------ views
    def set_view_mode(self, mode: str) -> None:
        """"split", "side", "flicker" or "diff"."""
        keys = [k for k, _t in MODES]
        i = keys.index(mode)
        self.mode_buttons[mode].setChecked(True)
        self.stack.setCurrentIndex(i)
        self.ctx.settings.set_value("compare/mode", mode)
        self._mode = mode
        view = {"split": self.split_view, "side": self.right_view, "flicker": self.flicker_view,
                "diff": self.diff_view}[mode]
        self.zoom_bar.set_view(view)
        for w in (self.flicker_check, self.flicker_speed, self.switch_button):
            w.setVisible(mode == "flicker")
        for w in (self.gain_label, self.gain_spin, self.auto_gain_check, self.legend):
            w.setVisible(mode == "diff")
        self.before_caption.setText("Reference" if mode == "diff" else "Before")
        self.hint_label.setText({
            "split": "Drag the white line; wheel zooms, drag pans.",
            "side": "Both views zoom and pan together.",
            "flicker": "",
            "diff": "",
        }[mode])
        self.hint_label.setVisible(bool(self.hint_label.text()))
        self._refresh_views(keep_view=True)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        compact = self.width() < COMPACT_BELOW
        for key, text in MODES:
            self.mode_buttons[key].setText(SHORT_MODES.get(key, text) if compact else text)

    def view_mode(self) -> str:
        return self._mode

    def _refresh_combos(self, prefer_after: str | None = None) -> None:
        order = [INPUT, BICUBIC, GT] + [k for k in self._sources if k not in (INPUT, BICUBIC, GT)]
        keys = [k for k in order if k in self._sources and not (k == INPUT and BICUBIC in self._sources)]
        labels = {k: self._sources[k].label for k in keys}
        models = [k for k in keys if k not in (INPUT, BICUBIC, GT)]
        before_default = BICUBIC if BICUBIC in keys else INPUT
        after_default = prefer_after or (models[0] if models else (GT if GT in keys else before_default))
        for combo, default in ((self.before_combo, before_default), (self.after_combo, after_default)):
            cur = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for k in keys:
                combo.addItem(labels[k], k)
            want = cur if (cur in keys and (combo is self.before_combo or prefer_after is None)) else default
            if combo is self.after_combo and prefer_after is not None and cur in models:
                want = cur  # keep the user's model choice; the first result becomes After
            combo.setCurrentIndex(max(0, combo.findData(want)))
            combo.setEnabled(combo.count() > 1)
            combo.blockSignals(False)

    def _pair(self) -> tuple[_Source | None, _Source | None]:
        b = self._sources.get(self.before_combo.currentData())
        a = self._sources.get(self.after_combo.currentData())
        return b, a

    def _refresh_views(self, keep_view: bool = False) -> None:
        before, after = self._pair()
        keep = keep_view and self.split_view.has_image()
        if before is None and after is None:
            for v in (self.split_view, self.left_view, self.right_view, self.diff_view):
                v.clear()
            self.flicker_view.set_images([])
            return
        if after is None:
            after = before
        if before is None:
            before = after
        self.split_view.set_images(before.display, after.display, before_label=before.label,
                                   after_label=after.label, keep_view=keep)
        self.left_view.set_image(before.display, keep_view=keep)
        self.left_view.set_label(before.label)
        self.right_view.set_image(after.display, keep_view=keep)
        self.right_view.set_label(after.label)
        self.flicker_view.set_images([before.display, after.display], [before.label, after.label], keep_view=keep)
        self.flicker_view.set_flicker(self._mode == "flicker" and self.flicker_check.isChecked()
                                      and before is not after)
        if before is after or before.display.shape != after.display.shape:
            self.diff_view.clear()
            self.diff_view.set_placeholder("Restore the image to see the difference" if before is after
                                           else "The two images differ in size")
        else:
            if self.auto_gain_check.isChecked():
                g = int(round(auto_gain(difference_map(after.display, before.display))))
                self.gain_spin.blockSignals(True)
                self.gain_spin.setValue(max(1, min(50, g)))
                self.gain_spin.blockSignals(False)
            gain = self.gain_spin.value()
            self.diff_view.set_image(difference_overlay(after.display, before.display, gain), keep_view=keep)
            self.diff_view.set_label(f"|{after.label} \u2212 {before.label}| \u00d7{gain}")
        self._update_legend()

    def _update_legend(self) -> None:
        gain = self.gain_spin.value()
        self.legend.set_title("Difference per pixel (of 255)")
        self.legend.set_labels("0 (same)", f"\u2265{255 / gain:.0f}", f"{127.5 / gain:.0f}")

    def _gain_changed(self, v: int) -> None:
        self.ctx.settings.set_value("compare/gain", int(v))
        self.auto_gain_check.setChecked(False)  # a hand-picked gain stays
        self._refresh_views(keep_view=True)

    def _auto_gain_toggled(self, on: bool) -> None:
        self.ctx.settings.set_value("compare/auto_gain", bool(on))
        self._refresh_views(keep_view=True)

    def _flicker_toggled(self, on: bool) -> None:
        self.flicker_view.set_flicker(on and self._mode == "flicker")

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and self._mode == "flicker":
            self.flicker_view.next()
            return
        super().keyPressEvent(event)

    # ------------------------------------------------------------------ metrics
    def _refresh_table(self) -> None:
        t = self.metrics_table
        has_gt = self._current is not None and self._current[1] is not None
        if has_gt:
            cols = [("Image", None), ("Y-PSNR", "psnr_y"), ("PSNR", "psnr"), ("Y-SSIM", "ssim_y"),
                    ("SSIM", "ssim"), ("\u0394 Y-PSNR vs bicubic", "gain"), ("Time", "time")]
            tip = "Against the ground truth; PSNR in dB, higher is better; border of scale px cropped"
        else:
            cols = [("Image", None), ("PSNR vs bicubic", "psnr_bic"), ("Time", "time")]
            tip = ("No ground truth for this image: how far each result moved from a plain bicubic "
                   "upscale (lower PSNR = bigger change). Pick a dataset image to measure quality.")
        keys = ([BICUBIC] if BICUBIC in self._metrics and has_gt else []) + \
               [k for k in self._metrics if k != BICUBIC]
        t.clear()
        t.setColumnCount(len(cols))
        t.setRowCount(len(keys))
        t.setHorizontalHeaderLabels([c for c, _k in cols])
        t.horizontalHeader().setToolTip(tip)
        t.setToolTip(tip)
        base = self._metrics.get(BICUBIC, {}).get("psnr_y")
        for r, k in enumerate(keys):
            m = self._metrics[k]
            src = self._sources.get(k)
            for c, (_name, mk) in enumerate(cols):
                if mk is None:
                    text = src.label if src is not None else k
                elif mk == "gain":
                    v = m.get("psnr_y")
                    text = "" if (k == BICUBIC or v is None or base is None) else f"{round(v - base, 2) + 0.0:+.2f} dB"
                elif mk == "time":
                    text = f"{self._seconds[k]:.1f} s" if self._seconds.get(k) else ""
                elif mk.startswith("psnr"):
                    text = _fmt(m.get(mk), " dB") if mk in m else ("\u2014" if k != BICUBIC else "")
                else:
                    text = _fmt(m.get(mk)) if mk in m else "\u2014"
                item = QTableWidgetItem(text)
                if mk is not None:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if self._notes.get(k):
                    item.setToolTip(self._notes[k])
                t.setItem(r, c, item)
        t.setVisible(bool(keys))
        hh = t.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(cols)):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self._fit_table()

    def _fit_table(self) -> None:
        """Make the metrics table tall enough for its rows (bicubic and up to TABLE_ROWS - 1
        models; more scroll): the splitter gives it that height."""
        t = self.metrics_table
        rows = min(max(t.rowCount(), 2), TABLE_ROWS)
        header = t.horizontalHeader()
        row_h = t.verticalHeader().defaultSectionSize() if t.rowCount() == 0 else t.rowHeight(0)
        need = header.sizeHint().height() + rows * row_h + 2 * t.frameWidth()
        if t.horizontalScrollBar().isVisible():
            need += t.horizontalScrollBar().sizeHint().height()
        t.setMinimumHeight(need)
        sizes = self._right_splitter.sizes()
        if len(sizes) == 2 and t.isVisible() and sizes[1] < need:
            total = sum(sizes)
            self._right_splitter.setSizes([max(total - need, 0), need])

    def metrics(self) -> dict[str, dict[str, float]]:
        """Metrics by key (``"bicubic"`` or the model path)."""
        return {k: dict(v) for k, v in self._metrics.items()}

    def result(self, model_path: Path | str) -> Any:
        """The restored ImageData of a model, or None."""
        return self._results.get(str(Path(model_path)))

    # ------------------------------------------------------------------ saving
    def _result_to_save(self) -> tuple[str, Any] | None:
        key = self.after_combo.currentData()
        if key in self._results:
            return key, self._results[key]
        for k, v in self._results.items():
            return k, v
        return None

    def _save_dialog(self) -> None:
        got = self._result_to_save()
        if got is None or self._current is None:
            return
        key, img = got
        src = self._current[0]
        start_dir = Path(str(self.ctx.settings.value("compare/save_dir", str(src.parent))))
        suggestion = start_dir / f"{src.stem}_restored{src.suffix if src.suffix.lower() != '.gif' else '.png'}"
        path, _ = QFileDialog.getSaveFileName(self, "Save the restored image", str(suggestion), IMAGE_FILTER)
        if path:
            self.ctx.settings.set_value("compare/save_dir", str(Path(path).parent))
            self.save_result(path, key)

    def save_result(self, path, model_path: Path | str | None = None) -> Path | None:
        """Save a model's result (default: the one shown as After) to ``path``."""
        from lesson7_studio.core import images

        if model_path is not None:
            img = self._results.get(str(Path(model_path)))
        else:
            got = self._result_to_save()
            img = got[1] if got else None
        if img is None:
            return None
        try:
            out = images.save_image(img, path)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            from ..errors import show_error

            show_error(self, exc, context="Saving the image failed")
            return None
        self._set_status(f"Saved {out}")
        self.ctx.status_message.emit(f"Saved {out}")
        return out

    # ------------------------------------------------------------------ state
    def _show_info(self) -> None:
        if self._loaded is None or self._current is None:
            return
        img, gt = self._loaded
        h, w = img.rgb.shape[:2]
        text = f"{self._current[0].name}: {w}\u00d7{h}, {img.bit_depth}-bit {img.format or ''}".strip()
        if gt is not None:
            gh, gw = gt.rgb.shape[:2]
            text += f"\nGround truth: {gw}\u00d7{gh}"
        self.image_info.set_full_text(text)
        self.image_info.setToolTip(text.replace(self._current[0].name, str(self._current[0]), 1))

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def _update_controls(self) -> None:
        busy = self.is_busy()
        self.restore_button.setEnabled(not busy and self._current is not None and bool(self.selected_models()))
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        self.save_button.setEnabled(bool(self._results))

    def sizeHint(self) -> QSize:
        return QSize(1000, 640)
