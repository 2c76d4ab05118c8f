"""Typed fields as widgets: bool -> check box, int/float -> spin box, choices -> combo box.

Used for model options (registry ``Option``), crappify step parameters (dataclass fields) and
training hyper-parameters. ``OptionsForm`` lays fields out in a form and reports changes.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

INT_LIMIT = 1_000_000_000
FIELD_MAX_WIDTH = 260
RANGE_BOX_MIN_WIDTH = 64  # each box of a (low, high) pair
# readable labels for terse parameter names (the tooltip keeps the name and its help)
LABELS = {
    "nf": "Features (nf)",
    "n_out": "Output channels",
    "y_range": "Output range",
    "norm_type": "Normalisation",
    "n_channels": "Channels",
    "n_features": "Features",
    "n_blocks": "Blocks",
    "n_extra_layers": "Extra layers",
    "noise_sz": "Noise size",
    "in_size": "Image size",
    "n_in": "Input channels",
    "n_classes": "Classes",
    "p": "Dropout",
    "lr": "Learning rate",
    "bs": "Batch size",
    "wd": "Weight decay",
}


@dataclass
class FieldSpec:
    """What a widget needs to know about one value."""

    name: str
    type: Any  # bool, int, float, str, tuple (or an element type for tuples: see tuple_len)
    default: Any
    help: str = ""
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    label: str = ""
    optional: bool = False  # None allowed (empty text)

    @property
    def title(self) -> str:
        if self.label:
            return self.label
        if self.name in LABELS:
            return LABELS[self.name]
        return self.name.replace("_", " ").capitalize()


def spec_from_option(opt: Any) -> FieldSpec:
    """A FieldSpec from a registry ``Option``."""
    return FieldSpec(
        name=opt.name,
        type=opt.type,
        default=opt.default,
        help=opt.help,
        choices=tuple(opt.choices) if opt.choices else None,
        minimum=opt.minimum,
        maximum=opt.maximum,
    )


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(type, optional) from an annotation such as ``int | None`` or ``tuple[float, float]``."""
    optional = False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        tp = args[0] if args else str
        origin = typing.get_origin(tp)
    if origin in (tuple, list):
        return tuple, optional
    if origin is typing.Literal:
        return str, optional
    return tp, optional


def specs_from_dataclass(obj_or_cls: Any, skip: tuple[str, ...] = ()) -> list[FieldSpec]:
    """FieldSpecs for a dataclass's fields; metadata keys help/choices/min/max/label are used."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - fall back to the raw annotations
        hints = {}
    out = []
    for f in dataclasses.fields(cls):
        if f.name.startswith("_") or f.name in skip or not f.init:
            continue
        md = f.metadata or {}
        if md.get("hidden"):
            continue
        if isinstance(obj_or_cls, type):
            if f.default is not dataclasses.MISSING:
                value = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                value = f.default_factory()  # type: ignore[misc]
            else:
                value = None
        else:
            value = getattr(obj_or_cls, f.name)
        tp, optional = _base_type(hints.get(f.name, type(value) if value is not None else str))
        choices = md.get("choices")
        lit = typing.get_origin(hints.get(f.name)) is typing.Literal
        if choices is None and lit:
            choices = typing.get_args(hints[f.name])
        if tp not in (bool, int, float, str, tuple):
            tp = type(value) if isinstance(value, (bool, int, float, str, tuple)) else str
        out.append(
            FieldSpec(
                name=f.name,
                type=tp,
                default=value,
                help=md.get("help", ""),
                choices=tuple(choices) if choices else None,
                minimum=md.get("min", md.get("minimum")),
                maximum=md.get("max", md.get("maximum")),
                label=md.get("label", ""),
                optional=optional,
            )
        )
    return out


def _fmt_float(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) < 1e-3 or abs(v) >= 1e5:
        return f"{v:.3g}"
    return f"{v:.6g}"


class Field:
    """One value's widget with ``value()``, ``set_value(v)`` and ``on_change(callback)``."""

    def __init__(self, spec: FieldSpec) -> None:
        self.spec = spec
        self.widget, self._get, self._set, self._signal = self._build(spec)
        self.widget.setObjectName(f"field_{spec.name}")
        if not isinstance(self.widget, QCheckBox):
            self.widget.setMaximumWidth(FIELD_MAX_WIDTH)
        tip = f"{spec.name}: {spec.help}" if spec.help else spec.name
        self.widget.setToolTip(tip)
        self.set_value(spec.default)

    def _build(self, s: FieldSpec):
        if (
            s.type is tuple
            and not s.optional
            and isinstance(s.default, (tuple, list))
            and len(s.default) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in s.default)
        ):
            return self._build_range(s)
        if s.choices:
            w = QComboBox()
            for c in s.choices:
                w.addItem(str(c), c)

            def get():
                return w.currentData()

            def set_(v):
                i = w.findData(v)
                if i < 0:
                    i = w.findText(str(v))
                if i >= 0:
                    w.setCurrentIndex(i)

            return w, get, set_, w.currentIndexChanged
        if s.type is bool:
            w = QCheckBox()
            return w, w.isChecked, lambda v: w.setChecked(bool(v)), w.toggled
        if s.type is int and not s.optional:
            w = QSpinBox()
            w.setRange(int(s.minimum) if s.minimum is not None else -INT_LIMIT,
                       int(s.maximum) if s.maximum is not None else INT_LIMIT)
            w.setAccelerated(True)
            return w, w.value, lambda v: w.setValue(int(v)), w.valueChanged
        small = isinstance(s.default, (int, float)) and s.default not in (0, None) and abs(s.default) < 1e-2
        if s.type is float and not s.optional and not small:
            w = QDoubleSpinBox()
            lo = s.minimum if s.minimum is not None else -1e9
            hi = s.maximum if s.maximum is not None else 1e9
            w.setRange(lo, hi)
            w.setDecimals(3)
            span = (hi - lo) if math.isfinite(hi - lo) and hi - lo < 1e8 else 10.0
            w.setSingleStep(0.05 if span <= 2 else 0.1 if span <= 20 else 1.0)
            return w, w.value, lambda v: w.setValue(float(v)), w.valueChanged
        # free text: floats in scientific notation, optional numbers, strings, tuples
        w = QLineEdit()
        if s.type is float:
            val = QDoubleValidator(w)
            val.setNotation(QDoubleValidator.Notation.ScientificNotation)
            if s.minimum is not None:
                val.setBottom(float(s.minimum))
            if s.maximum is not None:
                val.setTop(float(s.maximum))
            w.setValidator(val)
        if s.optional:
            w.setPlaceholderText("none")

        def get():
            text = w.text().strip()
            if text == "" and s.optional:
                return None
            if s.type is float:
                try:
                    return float(text)
                except ValueError:
                    return s.default
            if s.type is int:
                try:
                    return int(float(text))
                except ValueError:
                    return s.default
            if s.type is tuple:
                parts = [p for p in text.strip("()[] ").replace(";", ",").split(",") if p.strip()]
                try:
                    vals = tuple(float(p) for p in parts)
                except ValueError:
                    return s.default
                if isinstance(s.default, tuple) and all(isinstance(d, int) for d in s.default):
                    vals = tuple(int(v) for v in vals)
                return vals
            return text

        def set_(v):
            if v is None:
                w.setText("")
            elif isinstance(v, float):
                w.setText(_fmt_float(v))
            elif isinstance(v, (tuple, list)):
                w.setText(", ".join(_fmt_float(x) if isinstance(x, float) else str(x) for x in v))
            else:
                w.setText(str(v))

        return w, get, set_, w.editingFinished

    def _build_range(self, s: FieldSpec):
        """A (low, high) pair as two spin boxes."""
        ints = all(isinstance(v, int) for v in s.default)
        w = QWidget()
        lay = QHBoxLayout(w)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        boxes = []
        for _ in range(2):
            b = QSpinBox() if ints else QDoubleSpinBox()
            lo = s.minimum if s.minimum is not None else (-INT_LIMIT if ints else -1e6)
            hi = s.maximum if s.maximum is not None else (INT_LIMIT if ints else 1e6)
            if ints:
                b.setRange(int(lo), int(hi))
            else:
                b.setDecimals(2)
                b.setRange(float(lo), float(hi))
                b.setSingleStep(0.1 if hi - lo <= 10 else 1.0)
            # a wide range (dust 0..100000) would make the pair as wide as six digits each; let
            # the boxes shrink to what fits a narrow column (they grow again when there is room)
            b.setMinimumWidth(min(b.minimumSizeHint().width(), RANGE_BOX_MIN_WIDTH))
            boxes.append(b)
        dash = QLabel("to")
        lay.addWidget(boxes[0], 1)
        lay.addWidget(dash)
        lay.addWidget(boxes[1], 1)
        w.low, w.high = boxes  # type: ignore[attr-defined]

        def get():
            a, b = boxes[0].value(), boxes[1].value()
            return (min(a, b), max(a, b))

        def set_(v):
            if isinstance(v, (int, float)):
                v = (v, v)
            boxes[0].setValue(v[0])
            boxes[1].setValue(v[1])

        class _Both:
            def connect(self, cb):
                boxes[0].valueChanged.connect(cb)
                boxes[1].valueChanged.connect(cb)

        self._range_boxes = boxes
        return w, get, set_, _Both()

    def value(self) -> Any:
        return self._get()

    def set_value(self, v: Any) -> None:
        widgets = [self.widget, *getattr(self, "_range_boxes", [])]
        for w in widgets:
            w.blockSignals(True)
        try:
            self._set(v)
        finally:
            for w in widgets:
                w.blockSignals(False)

    def on_change(self, callback: Callable[[], None]) -> None:
        self._signal.connect(lambda *_: callback())


class OptionsForm(QWidget):
    """A QFormLayout of Fields. ``changed`` fires on any edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setLabelAlignment(self.form.labelAlignment())
        self.fields: dict[str, Field] = {}

    def set_specs(self, specs: list[FieldSpec]) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields.clear()
        for s in specs:
            f = Field(s)
            f.on_change(self.changed.emit)
            label = QLabel(s.title)
            label.setToolTip(f.widget.toolTip())
            self.form.addRow(label, f.widget)
            self.fields[s.name] = f
        if not specs:
            empty = QLabel("No parameters.")
            empty.setProperty("role", "hint")
            self.form.addRow(empty)

    def values(self) -> dict[str, Any]:
        return {k: f.value() for k, f in self.fields.items()}

    def set_values(self, values: dict[str, Any]) -> None:
        for k, v in values.items():
            if k in self.fields:
                self.fields[k].set_value(v)

    def field(self, name: str) -> Field:
        return self.fields[name]
