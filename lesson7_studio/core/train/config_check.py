"""Checks of a training config read from JSON: every field's type and range, before use.

:func:`check_config` takes what ``json.loads`` gave for a ``config.json`` (anything: a list, a
string, a number ...) and returns a dict of fields ready for ``TrainConfig(**fields)``, or raises
TrainingError naming the file, the field (``stages[1] ('gan'): field 'div'``) and what it must be.
Types come from the dataclass annotations, so a field added to TrainConfig or StageConfig is
checked too; ranges come from the tables below.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Union

from ..errors import TrainingError

_INF = math.inf

# field -> (lowest, highest, lowest excluded); ints and floats alike
CONFIG_RANGES: dict[str, tuple[float, float, bool]] = {
    "size": (8, 8192, False),
    "batch_size": (1, 4096, False),
    "wd": (0, 10, False),
    "seed": (0, 2**63 - 1, False),
    "workers": (0, 256, False),
    "grad_clip": (0, 1e9, True),
    "max_minutes": (0, 1e9, True),
    "max_steps": (1, 1e15, False),
    "steps_per_epoch": (1, 1e12, False),
    "valid_batches": (1, 1e12, False),
    "checkpoint_every_steps": (0, 1e12, False),
    "keep_checkpoints": (1, 10_000, False),
    "snapshots": (0, 10_000, False),
    "ema": (0, 0.99999, False),
    "max_zoom": (1, 8, False),
    "early_stop_patience": (1, 1e6, False),
    "preview_samples": (0, 64, False),
    "critic_lr_mult": (0, 1e6, True),
    "critic_thresh": (0, 1e6, False),
    "gen_thresh": (0, 1e6, False),
    "noise_size": (1, 4096, False),
    "clip": (0, 1e3, False),
    "n_critic": (1, 1000, False),
}
STAGE_RANGES: dict[str, tuple[float, float, bool]] = {
    "epochs": (0, 1_000_000, False),
    "pct_start": (0, 1, False),
    "div": (0, 1e12, True),
    "div_final": (0, 1e15, True),
    "size": (8, 8192, False),
    "batch_size": (1, 4096, False),
    "checkpoint_every_steps": (0, 1e12, False),
}
# tuple fields: (length, lowest, highest)
TUPLE_FIELDS: dict[str, tuple[int, float, float]] = {
    "moms": (3, 0, 1),
    "gan_weights": (2, 0, 1e6),
    "gan_betas": (2, 0, 1),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "precision": ("auto", "fp32", "bf16", "fp16"),
}
MAX_STAGES = 100


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Field:
    def __init__(self, source: str, where: str, name: str) -> None:
        self.source, self.where, self.name = source, where, name

    def fail(self, what: str, value: Any) -> TrainingError:
        return TrainingError(f"{self.source}: {self.where}field '{self.name}' must be {what}; got {_show(value)}.")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _range_text(lo: float, hi: float, open_lo: bool) -> str:
    low = f"> {_num(lo)}" if open_lo else f">= {_num(lo)}"
    return low if hi >= 1e9 else f"{low} and <= {_num(hi)}"  # huge upper bounds only catch garbage


def _number(f: _Field, value: Any, kind: type, rng: tuple[float, float, bool] | None) -> int | float:
    noun = "a whole number" if kind is int else "a number"
    lo, hi, open_lo = rng if rng is not None else (-_INF, _INF, False)
    what = noun if rng is None else f"{noun} {_range_text(lo, hi, open_lo)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise f.fail(what, value)
    if isinstance(value, float) and (not math.isfinite(value) or (kind is int and not value.is_integer())):
        raise f.fail(what, value)
    if value < lo or value > hi or (open_lo and value == lo):
        raise f.fail(what, value)
    return int(value) if kind is int else float(value)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin is Union or (hasattr(types, "UnionType") and isinstance(tp, types.UnionType)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else Any), True
    return tp, False


def _check_value(f: _Field, tp: Any, value: Any, rng: tuple[float, float, bool] | None) -> Any:
    tp, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise f.fail(_describe(tp, f.name, rng), value)
    origin = typing.get_origin(tp) or tp
    if origin in (int, float):
        return _number(f, value, origin, rng)
    if origin is bool:
        if not isinstance(value, bool):
            raise f.fail("true or false", value)
        return value
    if origin is str:
        if not isinstance(value, str):
            raise f.fail("text", value)
        choices = CHOICES.get(f.name)
        if choices and value.lower() not in choices:
            raise f.fail(f"one of {', '.join(choices)}", value)
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise f.fail("a JSON object", value)
        return dict(value)
    if origin is tuple:
        n, lo, hi = TUPLE_FIELDS.get(f.name, (None, -_INF, _INF))
        what = f"a list of {n} numbers" if n else "a list of numbers"
        if not isinstance(value, (list, tuple)) or (n is not None and len(value) != n):
            raise f.fail(what, value)
        return tuple(_number(f, v, float, (lo, hi, False)) for v in value)
    return value  # Any (the learning rate is checked by its own parser)


def _describe(tp: Any, name: str, rng: tuple[float, float, bool] | None) -> str:
    origin = typing.get_origin(tp) or tp
    if origin is int:
        return "a whole number" + (f" {_range_text(*rng)}" if rng else "")
    if origin is float:
        return "a number" + (f" {_range_text(*rng)}" if rng else "")
    return {bool: "true or false", str: "text", dict: "a JSON object", list: "a list",
            tuple: "a list of numbers"}.get(origin, "set")


def _check_lr(f: _Field, value: Any) -> Any:
    from .schedule import lr_from_json

    what = "a positive number, a list of them, or {\"slice\": [low or null, high]}"
    try:
        lr = value if isinstance(value, slice) else lr_from_json(value)
    except (TypeError, ValueError, KeyError, AttributeError):
        raise f.fail(what, value) from None
    values = [lr.start, lr.stop] if isinstance(lr, slice) else (lr if isinstance(lr, list) else [lr])
    for v in values:
        if v is None and isinstance(lr, slice) and v is lr.start:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise f.fail(what, value)
    if isinstance(lr, list) and not lr:
        raise f.fail(what, value)
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The field types of ``cls`` (empty, so types go unchecked, if an annotation cannot be
    resolved; a test checks that both config classes resolve)."""
    if cls not in _HINTS:
        try:
            _HINTS[cls] = typing.get_type_hints(cls)
        except Exception:  # an annotation naming something not importable at run time
            _HINTS[cls] = {}
    return _HINTS[cls]


def _check_fields(cls: type, d: Any, source: str, where: str, ranges: dict) -> dict[str, Any]:
    if not isinstance(d, dict):
        noun = "the config" if not where else where.rstrip(": ")
        raise TrainingError(f"{source}: {noun} must be a JSON object {{\"field\": value, ...}}; got {_show(d)}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    bad = sorted(str(k) for k in d if k not in fields)
    if bad:
        raise TrainingError(f"{source}: {where}unknown field(s) {', '.join(bad)}.",
                            hint=f"Known fields: {', '.join(sorted(fields))}.")
    missing = [n for n, f in fields.items() if n not in d and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
    if missing:
        raise TrainingError(f"{source}: {where}field(s) {', '.join(missing)} missing.")
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for name, value in d.items():
        f = _Field(source, where, name)
        if name == "lr":
            out[name] = _check_lr(f, value)
        elif name == "stages":
            out[name] = value  # checked one by one by the caller
        else:
            out[name] = _check_value(f, hints.get(name, Any), value, ranges.get(name))
    return out


def check_stage(d: Any, index: int, source: str) -> dict[str, Any]:
    """The fields of stage ``index`` of a config, checked (TrainingError naming the field)."""
    from .recipes import STAGE_KINDS, StageConfig

    label = f"stages[{index}]"
    if isinstance(d, dict) and isinstance(d.get("name"), str):
        label += f" ('{d['name'][:40]}')"
    out = _check_fields(StageConfig, d, source, f"{label}: ", STAGE_RANGES)
    if not out["name"].strip():
        raise _Field(source, f"{label}: ", "name").fail("a non-empty name", out["name"])
    if "kind" in out and out["kind"] not in STAGE_KINDS:
        raise _Field(source, f"{label}: ", "kind").fail(f"one of {', '.join(STAGE_KINDS)}", out["kind"])
    return out


def check_config(d: Any, source: str = "Training config") -> dict[str, Any]:
    """The fields of a TrainConfig read from JSON, checked (``stages`` only as a list)."""
    from .recipes import TrainConfig

    out = _check_fields(TrainConfig, d, source, "", CONFIG_RANGES)
    stages = out.get("stages", [])
    if not isinstance(stages, list):
        raise _Field(source, "", "stages").fail("a list of stage objects", stages)
    if len(stages) > MAX_STAGES:
        raise _Field(source, "", "stages").fail(f"a list of at most {MAX_STAGES} stages", f"{len(stages)} stages")
    return out  # each stage is checked by StageConfig.from_dict (check_stage)
