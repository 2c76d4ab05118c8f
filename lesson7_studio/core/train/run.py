"""A training run: config -> run folder, stage by stage, resumable.

Run folder::

    config.json          everything needed to repeat the run (TrainConfig)
    metrics.csv          one row per epoch: stage, epoch, step, train_loss, valid_loss, psnr, ssim,
                         loss components, lr, seconds
    checkpoints/         <stage>-s<step>.safetensors (+ .critic.safetensors in GAN stages) and
                         <stage>-s<step>.state.pt (optimizer, schedule position, RNG, epoch, step,
                         stage; tensors and primitives only: loads with weights_only=True);
                         last.json names the newest; best.safetensors the best generator
    samples/             <stage>_epoch<NNN>.png previews
    preds/               generator predictions (NoGAN save-preds stage)
    model.safetensors    final generator, metadata: recipe, crappify recipe, training summary

``train(config, resume=True)`` continues from ``checkpoints/last.json``: mid-epoch positions
resume exactly (each epoch's order is a function of (seed, epoch); the batches already done are
skipped; RNG states are restored). A finished run resumed with more epochs extends its last
stage with a new schedule segment.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from ..errors import Cancelled, DatasetError, TrainingError
from ..files import remove_stale_parts
from ..images import atomic_write
from ..events import CancelToken, EventCallback, Finished, Log, RunProgress, StageStart, emit
from . import distributed as dist_
from .callbacks import BudgetCallback, CheckpointCallback, EarlyStopping, PreviewCallback, Recorder
from .learner import Callback, Learner, resolve_device
from .recipes import StageConfig, TrainConfig

STATE_FORMAT = 1
RESUME_CHANGEABLE = ("epochs", "max_minutes", "max_steps", "device", "workers", "precision", "valid_batches",
                     "preview_samples", "data", "out")


@dataclass
class RunResult:
    out: Path
    model_path: Optional[Path]
    finished: bool  # every stage ran to its end
    stopped: str = ""  # "" | "budget" (resumable)
    steps: int = 0
    metrics: dict = field(default_factory=dict)  # last epoch's metrics
    stages_done: list = field(default_factory=list)
    seconds: float = 0.0
    generator: Any = field(default=None, repr=False)  # the trained generator (Restorer) in memory


# ---------------------------------------------------------------------------------------------
# small file helpers


def atomic_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())


def _atomic_copy(src: Path, dst: Path) -> None:
    with atomic_write(dst) as tmp:
        shutil.copyfile(src, tmp)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


class RunFolder:
    """Paths of a run folder and its metrics.csv (rewritten whole, atomically, per epoch)."""

    def __init__(self, root: Path, writer: bool = True) -> None:
        self.root = Path(root)
        self.writer = writer
        self.ckpt = self.root / "checkpoints"
        self.samples = self.root / "samples"
        self.preds = self.root / "preds"
        self.rows: list[dict] = []

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def model_path(self) -> Path:
        return self.root / "model.safetensors"

    def holds_run(self) -> bool:
        return self.config_path.exists() or (self.ckpt / "last.json").exists()

    def create(self) -> None:
        if self.writer:
            for p in (self.root, self.ckpt, self.samples):
                p.mkdir(parents=True, exist_ok=True)

    def load_rows(self) -> None:
        self.rows = []
        if self.metrics_path.exists():
            with open(self.metrics_path, newline="", encoding="utf-8") as f:
                for r in csv.DictReader(f):
                    self.rows.append(dict(r))

    def add_row(self, row: dict) -> None:
        self.rows.append({k: _fmt(v) for k, v in row.items()})
        self.write_rows()

    def write_rows(self) -> None:
        if not self.writer:
            return
        first = ["stage", "epoch", "step", "train_loss", "valid_loss", "psnr", "ssim"]
        last = ["lr", "seconds"]
        cols = [c for c in first if any(c in r for r in self.rows)]
        for r in self.rows:
            for k in r:
                if k not in cols and k not in last:
                    cols.append(k)
        cols += last
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, restval="", lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow(r)
        atomic_bytes(self.metrics_path, buf.getvalue().encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# RNG state (primitives and tensors only)


def rng_state() -> dict:
    st = np.random.get_state()
    py = random.getstate()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": st[0], "keys": torch.from_numpy(st[1].astype(np.int64)), "pos": int(st[2]),
                  "has_gauss": int(st[3]), "cached_gaussian": float(st[4])},
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    n = s["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = s["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in s and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(s["cuda"])
        except RuntimeError:
            pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# data


def read_dataset_json(root: Path) -> dict:
    p = Path(root) / "dataset.json"
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetError(f"Cannot read {p}: {err}") from None


def dataset_scale(root: Path) -> int:
    meta = read_dataset_json(root)
    s = meta.get("scale")
    try:
        s = int(s) if s else 1
    except (TypeError, ValueError):
        s = 1
    return max(1, s)


def crop_multiple(scale: int, model_scale: int, size_multiple: int) -> int:
    """HR crop sizes must be multiples of this so that the network input fits the model."""
    pre = max(1, scale // max(1, model_scale))
    return scale * size_multiple // math.gcd(size_multiple, pre)


def check_crop_size(size: int, scale: int, info: Any, stage: str = "") -> None:
    """TrainingError unless ``size`` (HR px) gives the model a valid input size."""
    m = crop_multiple(scale, info.model_scale, info.size_multiple)
    if size % m:
        lo = max(m, size // m * m)
        hi = lo + m if lo >= size else lo
        where = f" (stage '{stage}')" if stage else ""
        raise TrainingError(
            f"Crop size {size} px{where} does not fit {info.name} at scale {scale}: the HR crop must be a "
            f"multiple of {m} px (the network input must be a multiple of {info.size_multiple}).",
            hint=f"Use --size {lo}" + (f" or --size {hi}." if hi != lo else "."),
        )


class _Limit(torch.utils.data.Sampler):
    """``n`` indices per epoch from ``base`` (its set_epoch / skip pass through): its first ``n``
    when it holds more; with ``repeat`` and fewer, its orders for successive passes laid end to
    end, so an epoch of a small dataset is still ``n`` items (new random crops and flips each pass)."""

    _PASS = 100_003  # pass r of epoch e uses the base's order of epoch e + r * _PASS

    def __init__(self, base, n: int, repeat: bool = False) -> None:
        self.base, self.n, self.repeat = base, n, repeat
        self.epoch = 0

    def set_epoch(self, e: int) -> None:
        self.epoch = int(e)
        self.base.set_epoch(e)

    def skip(self, k: int) -> None:
        self._skip = k
        self.base.skip(0)

    def __iter__(self):
        k = getattr(self, "_skip", 0)
        self._skip = 0
        idx = list(iter(self.base))
        if self.repeat and 0 < len(idx) < self.n:
            r = 1
            while len(idx) < self.n:
                self.base.set_epoch(self.epoch + r * self._PASS)
                idx += list(iter(self.base))
                r += 1
            self.base.set_epoch(self.epoch)
        idx = idx[: self.n]
        return iter(idx[k:])

    def __len__(self) -> int:
        return self.n if self.repeat and len(self.base) > 0 else min(self.n, len(self.base))


def make_loader(ds, batch_size: int, *, train: bool, seed: int, workers: Optional[int], limit_batches: Optional[int],
                dinfo: dist_.DistInfo, device: torch.device):
    """A DataLoader over ``ds`` with a ResumableSampler (sharded under DDP)."""
    sampler: Any = dist_.ResumableSampler(len(ds), shuffle=train, seed=seed, rank=dinfo.rank,
                                          world_size=dinfo.world_size, drop_last=False)
    if limit_batches:  # training: exactly that many batches an epoch (a small dataset repeats)
        sampler = _Limit(sampler, limit_batches * batch_size, repeat=train)
    n_workers = int(workers or 0)
    return torch.utils.data.DataLoader(
        ds, batch_size=batch_size, sampler=sampler, num_workers=n_workers, drop_last=train,
        pin_memory=device.type == "cuda", persistent_workers=False,
        # a private generator: making an iterator must not draw from the global RNG
        generator=torch.Generator().manual_seed(seed),
    )


def _paired(root: Path, split: str, size: int, augment: bool, seed: int):
    from .. import datasets

    return datasets.PairedDataset(root, split=split, crop_size=size, augment=augment, seed=seed)


def _paired_valid(root: Path, size: int, seed: int):
    """The validation split, or None when the dataset has none."""
    meta = read_dataset_json(root)
    if not meta.get("valid"):
        return None
    return _paired(root, "valid", size, False, seed)


class CriticDataset(torch.utils.data.Dataset):
    """Real HR crops (label 1) and saved generator predictions (label 0) for critic pretraining."""

    def __init__(self, paired, fake_dir: Path, *, flip: bool = True, seed: int = 0) -> None:
        self.paired = paired
        self.fakes = sorted(Path(fake_dir).glob("*.png"))
        if len(self.fakes) != len(paired):
            raise TrainingError(
                f"{fake_dir} holds {len(self.fakes)} predictions for {len(paired)} images; rerun the save-preds stage.")
        self.flip = flip
        self.seed = seed

    def __len__(self) -> int:
        return 2 * len(self.fakes)

    def __getitem__(self, i: int):
        from PIL import Image

        n = len(self.fakes)
        if i < n:
            with Image.open(self.fakes[i]) as im:
                x = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
            y = torch.tensor(0.0)
        else:
            x = self.paired[i - n][1]
            y = torch.tensor(1.0)
        if self.flip:
            g = torch.Generator().manual_seed(self.seed * 7919 + i)
            if torch.rand((), generator=g) < 0.5:
                x = x.flip(-1)
        return x.contiguous(), y


# ---------------------------------------------------------------------------------------------
# models and weights on disk


def _save_weights(path: Path, module: nn.Module, name: str, options: dict, info: Optional[dict],
                  half: bool = False) -> Path:
    from .. import checkpoint

    return checkpoint.save_model(path, module, name, options, info=info, half=half)


def _load_weights(path: Path, module: nn.Module) -> None:
    """Load a .safetensors written by checkpoint.save_model into an existing module."""
    from safetensors.torch import load_file

    net = getattr(module, "net", module)
    try:
        sd = load_file(str(path), device="cpu")
    except Exception as err:
        from ..errors import CheckpointError

        raise CheckpointError(f"Cannot read checkpoint {path}: {err}") from None
    missing, unexpected = net.load_state_dict(sd, strict=False)
    if missing:
        from ..errors import CheckpointError

        raise CheckpointError(f"Checkpoint {path} lacks {len(missing)} tensors of the model (e.g. {missing[0]}).")


def _init_checkpoint(cfg: TrainConfig) -> Path:
    """The checkpoint file named by ``cfg.init`` ("starter" is the bundled starter model)."""
    if cfg.init == "starter":
        from ..restore import starter_model_path

        path = starter_model_path()
    else:
        path = Path(cfg.init)
    if not path.is_file():
        raise TrainingError(f"Cannot fine-tune from {path}: the file does not exist.")
    return path


def _options_for(arch: str, cfg: TrainConfig, scale: int, *, pretrained: bool) -> dict:
    from .. import models

    names = {o.name for o in models.options_of(arch)}
    opts = dict(cfg.arch_options)
    if "scale" in names:
        opts["scale"] = scale
    if "pretrained" in names:  # arch_options "pretrained": False = a random encoder next to an ImageNet VGG loss
        opts["pretrained"] = bool(pretrained and cfg.pretrained and opts.get("pretrained", True))
    if "in_size" in names:
        opts.setdefault("in_size", cfg.size)
    if "noise_sz" in names:
        opts.setdefault("noise_sz", cfg.noise_size)
    return opts


def _critic_options(cfg: TrainConfig) -> dict:
    from .. import models

    names = {o.name for o in models.options_of(cfg.critic)}
    opts = dict(cfg.critic_options)
    if "in_size" in names:
        opts.setdefault("in_size", cfg.size)
    return opts


# ---------------------------------------------------------------------------------------------
# the run


class _Run:
    def __init__(self, cfg: TrainConfig, on_event, cancel, resume: bool) -> None:
        self.cfg = cfg
        self.cancel = cancel
        self.resume = resume
        self.t_start = time.perf_counter()
        self.device = resolve_device(cfg.device)
        self.dinfo = dist_.init_from_env(self.device.type)
        if self.dinfo.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dinfo.local_rank)
        self.main = self.dinfo.is_main
        # every event passes through the overall-progress tracker (total steps, ETA)
        self.progress = RunProgress(on_event if self.main else None, cancel)
        self.on_event = self.progress if self.main and on_event is not None else None
        self.folder = RunFolder(Path(cfg.out), writer=self.main)
        self.data = Path(cfg.data) if cfg.data else None
        self.global_step = 0
        self.state: dict | None = None
        self.segments: dict[str, list[list[int]]] = {}
        self.stage_status: dict[str, str] = {}
        self.gen: nn.Module | None = None  # the Restorer (or WGAN generator)
        self.gen_name = cfg.arch
        self.gen_opts: dict = {}
        self.critic: nn.Module | None = None
        self.critic_opts: dict = {}
        self.gen_opt_state: dict | None = None
        self.gen_opt: torch.optim.Optimizer | None = None
        self.keep: list[str] = []
        self.last_metrics: dict = {}
        self.stopped = ""
        self.scale = 1
        self.dataset_meta: dict = {}
        self.elapsed_before = 0.0

    def emit(self, ev) -> None:
        emit(self.on_event, ev)

    # -- setup --------------------------------------------------------------------------------
    def check_data(self) -> None:
        cfg = self.cfg
        if self.data is None:
            raise TrainingError("No dataset given: pass --data DATASET (a folder made by `lesson7-studio crappify`).")
        if not self.data.is_dir():
            raise DatasetError(f"Dataset folder {self.data} does not exist.")
        kinds = {s.kind for s in cfg.stages}
        if kinds & {"restore", "save-preds", "critic", "gan"}:
            if not (self.data / "dataset.json").exists():
                raise DatasetError(
                    f"{self.data} is not a paired dataset (no dataset.json).",
                    hint="Build one with `lesson7-studio crappify SRC DATASET`.")
            self.dataset_meta = read_dataset_json(self.data)
            self.scale = dataset_scale(self.data)
            self._check_sizes_fit_images()
            n_train = len(self.dataset_meta.get("train", []))
            for s in cfg.stages:
                bs = s.batch_size or cfg.batch_size
                n = 2 * n_train if s.kind == "critic" else n_train
                if s.trains and n // self.dinfo.world_size < bs:
                    raise TrainingError(
                        f"Stage '{s.name}': {n} training items is fewer than one batch of {bs}"
                        + (f" per process ({self.dinfo.world_size} processes)" if self.dinfo.enabled else "") + ".",
                        hint="Lower --batch-size or add images to the dataset.")

    def _check_sizes_fit_images(self) -> None:
        """TrainingError, before anything is allocated, when a stage's HR crop is larger than
        every image of the dataset (the crops would be mirror padding, and take its memory)."""
        items = self.dataset_meta.get("items") or {}
        sides = [max(int(v) for v in it["hr_size"]) for it in items.values()
                 if isinstance(it, dict) and isinstance(it.get("hr_size"), list) and it["hr_size"]]
        if not sides:
            return
        largest = max(sides)
        for s in self.cfg.stages:
            size = s.size or self.cfg.size
            if s.kind in ("restore", "critic", "gan") and size > largest:
                where = f" (stage '{s.name}')" if s.size else ""
                raise TrainingError(
                    f"Crop size {size} px{where} is larger than every image of {self.data}: its largest HR "
                    f"image is {largest} px on its longest side.",
                    hint=f"Use --size {largest} or less.")

    def build_models(self, load_pretrained: bool) -> None:
        from .. import models

        cfg = self.cfg
        kinds = {s.kind for s in cfg.stages}
        if "wgan" in kinds:
            self.gen_opts = _options_for(cfg.arch, cfg, 1, pretrained=False)
            self.gen = models.create(cfg.arch, **self.gen_opts)
        else:
            init = _init_checkpoint(cfg) if cfg.init else None
            if init is not None:
                self._adopt_init(init)
            self.gen_opts = _options_for(cfg.arch, cfg, self.scale, pretrained=load_pretrained and init is None)
            self.gen = models.restorer(cfg.arch, **self.gen_opts)
            if init is not None and load_pretrained:  # on resume the run's own checkpoint wins
                _load_weights(init, self.gen)
                self.emit(Log(f"Fine-tuning from {init} ({cfg.arch})."))
            info = self.gen.info
            for s in cfg.stages:
                if s.kind in ("restore", "gan", "save-preds", "critic"):
                    check_crop_size(s.size or cfg.size, self.scale, info, s.name)
        if kinds & {"critic", "gan", "wgan"}:
            self.critic_opts = _critic_options(cfg)
            self.critic = models.create(cfg.critic, **self.critic_opts)
        # checkpoints store the options that rebuild the net without downloading anything
        if "pretrained" in self.gen_opts:
            self.gen_opts["pretrained"] = False

    def _adopt_init(self, path: Path) -> None:
        """Take the generator's architecture and options from the checkpoint it starts from."""
        from .. import checkpoint

        meta = checkpoint.read_metadata(path)
        if meta.get("kind", "restorer") != "restorer":
            raise TrainingError(f"{path} holds a {meta.get('kind')}, not an image restorer; it cannot start a run.")
        if int(meta.get("scale", self.scale)) != self.scale:
            raise TrainingError(
                f"{path} restores at scale {meta.get('scale')} but dataset {self.data} has scale {self.scale}.",
                hint="Fine-tune on a dataset built with a recipe of the same scale.")
        self.cfg.arch = meta["name"]
        from ..models.registry import with_legacy_options  # options added since: the file's values

        stored = with_legacy_options(meta["name"], meta.get("options", {}))
        self.cfg.arch_options = {k: v for k, v in stored.items() if k not in ("scale", "pretrained")}

    def build_losses(self) -> None:
        """Construct every loss the stages need now, so missing weights fail before training."""
        self.losses: dict[str, nn.Module] = {}
        for s in self.cfg.stages:
            if s.kind == "restore":
                self.losses[s.name] = self._restore_loss(s)
            elif s.kind == "gan":
                self.losses[s.name] = self._pixel_loss(self.cfg.gan_pixel_loss, self.cfg.loss_options
                                                       if self.cfg.gan_pixel_loss == self.cfg.loss else {})

    def _pixel_loss(self, name: str, opts: dict) -> nn.Module:
        from ..losses import build_loss

        key = (name, json.dumps(opts or {}, sort_keys=True))
        cache = self.__dict__.setdefault("_loss_cache", {})
        if key not in cache:  # stages with the same loss share one (VGG is big)
            cache[key] = build_loss(name, pretrained=self.cfg.pretrained, on_event=self.on_event, **(opts or {}))
        return cache[key]

    def _restore_loss(self, s: StageConfig) -> nn.Module:
        name = s.loss or self.cfg.loss
        opts = s.loss_options if s.loss_options is not None else (self.cfg.loss_options if name == self.cfg.loss else {})
        return self._pixel_loss(name, opts)

    # -- checkpoints --------------------------------------------------------------------------
    def _info(self, extra: Optional[dict] = None) -> dict:
        info = {"recipe": self.cfg.recipe, "training": {"config": self.cfg.to_dict(), "step": self.global_step,
                                                      "metrics": self.last_metrics}}
        if self.dataset_meta.get("recipe") is not None:
            info["crappify_recipe"] = self.dataset_meta.get("recipe")
            info["crappify_recipe_hash"] = self.dataset_meta.get("recipe_hash")
        if extra:
            info.update(extra)
        return info

    def save_checkpoint(self, learn: Learner, stage_index: int, reason: str) -> Optional[Path]:
        if not self.main:
            return None
        stage = self.cfg.stages[stage_index]
        self.global_step = learn.step
        if reason == "best":
            if stage.kind != "restore":
                return None
            last = getattr(self, "_last_saved", None)
            if last is not None and last[0] == learn.step and last[1].exists():  # same weights: copy
                _atomic_copy(last[1], self.folder.ckpt / "best.safetensors")
                return self.folder.ckpt / "best.safetensors"
            return _save_weights(self.folder.ckpt / "best.safetensors", self.gen, self.gen_name, self.gen_opts,
                                 self._info({"stage": stage.name, "best": True}))
        epoch, batches = learn.position()
        stage_done = reason == "early-stop" or (epoch >= learn.n_epoch and batches == 0)
        name = f"{stage.name}-s{learn.step:07d}"
        base = self.folder.ckpt / name
        if stage.kind in ("restore", "gan", "wgan") or self.gen is not None:
            _save_weights(base.with_suffix(".safetensors"), self.gen, self.gen_name, self.gen_opts,
                          self._info({"stage": stage.name}))
        critic_trained = stage.kind in ("critic", "gan", "wgan") or any(
            s.kind in ("critic", "gan", "wgan") and self.stage_status.get(s.name) for s in self.cfg.stages)
        if self.critic is not None and critic_trained:
            _save_weights(self.folder.ckpt / f"{name}.critic.safetensors", self.critic, self.cfg.critic,
                          self.critic_opts, {"recipe": self.cfg.recipe, "stage": stage.name})
        status = dict(self.stage_status)
        status[stage.name] = "done" if stage_done else "partial"
        state = {
            "format": STATE_FORMAT,
            "stage_index": stage_index,
            "stage": stage.name,
            "epoch": int(epoch),
            "batches": int(batches),
            "step": int(learn.step),
            "stage_done": bool(stage_done),
            "reason": reason,
            "segments": {k: [list(map(int, s)) for s in v] for k, v in self.segments.items()},
            "stage_status": status,
            "opt": learn.opt.state_dict() if learn.opt is not None else None,
            "opt_owner": "gen" if stage.kind == "restore" else stage.kind,
            "crit_opt": learn.crit_opt.state_dict() if getattr(learn, "crit_opt", None) is not None else None,
            "scaler": learn.precision.scaler.state_dict() if learn.precision.scaler is not None else None,
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in learn.cbs},
            "rng": rng_state(),
            "elapsed": float(self.elapsed_before + time.perf_counter() - self.t_start),
            "has_critic": self.critic is not None and (self.folder.ckpt / f"{name}.critic.safetensors").exists(),
        }
        atomic_torch_save(state, base.with_suffix(".state.pt"))
        atomic_bytes(self.folder.ckpt / "last.json", json.dumps({"name": name, "step": int(learn.step)}).encode())
        self._prune(name)
        if self.cfg.snapshots and self.gen is not None and stage.kind in ("restore", "gan", "wgan"):
            self._snapshot(name, stage.name)
        self._last_saved = (learn.step, base.with_suffix(".safetensors"))
        return base.with_suffix(".safetensors")

    def _prune(self, newest: str) -> None:
        """Keep the newest ``keep_checkpoints`` full resumable states (weights + optimizers)."""
        ck = self.folder.ckpt
        names = sorted({p.name.split(".")[0] for p in ck.glob("*-s*.state.pt")},
                       key=lambda n: int(n.rsplit("-s", 1)[1]))
        keep = max(1, int(self.cfg.keep_checkpoints or 1))
        for n in names[:-keep]:
            if n == newest:
                continue
            for p in ck.glob(f"{n}.*"):
                p.unlink(missing_ok=True)

    def _snapshot(self, name: str, stage: str) -> None:
        """A weights-only, half-precision copy of the generator in checkpoints/snapshots/, the newest
        ``snapshots`` kept: for picking the best moment of a GAN phase (DeOldify's practice)."""
        folder = self.folder.ckpt / "snapshots"
        folder.mkdir(exist_ok=True)
        _save_weights(folder / f"{name}.safetensors", self.gen, self.gen_name, self.gen_opts,
                      self._info({"stage": stage, "snapshot": True}), half=True)
        old = sorted(folder.glob("*-s*.safetensors"), key=lambda p: int(p.stem.rsplit("-s", 1)[1]))
        for p in old[: -int(self.cfg.snapshots)]:
            p.unlink(missing_ok=True)

    def load_last(self) -> bool:
        last = self.folder.ckpt / "last.json"
        if not last.exists():
            return False
        from ..errors import CheckpointError

        try:
            name = json.loads(last.read_text())["name"]
        except (OSError, json.JSONDecodeError, KeyError) as err:
            raise CheckpointError(f"{last} is damaged: {err}") from None
        state_path = self.folder.ckpt / f"{name}.state.pt"
        from ..checkpoint import safe_torch_load

        self.state = safe_torch_load(state_path, "resume state",
                                     hint="Delete that checkpoint (or the run folder) and train again.")
        if not isinstance(self.state, dict) or self.state.get("format") != STATE_FORMAT:
            fmt = self.state.get("format") if isinstance(self.state, dict) else type(self.state).__name__
            raise CheckpointError(f"{state_path} has an unknown format {fmt!r}.")
        gen_path = self.folder.ckpt / f"{name}.safetensors"
        if gen_path.exists():
            _load_weights(gen_path, self.gen)
        crit_path = self.folder.ckpt / f"{name}.critic.safetensors"
        if self.critic is not None and crit_path.exists():
            _load_weights(crit_path, self.critic)
        self.global_step = int(self.state["step"])
        self.segments = {k: [list(s) for s in v] for k, v in self.state.get("segments", {}).items()}
        self.stage_status = dict(self.state.get("stage_status", {}))
        self.elapsed_before = float(self.state.get("elapsed", 0.0))
        return True

    # -- overall progress ------------------------------------------------------------------------
    def _stage_batches(self, stage: StageConfig) -> int:
        """Training batches per epoch of ``stage``, from the loader the stage will use."""
        from .. import datasets

        cfg = self.cfg
        if stage.kind == "wgan":
            root = self.data / "hr" if (self.data / "hr").is_dir() else self.data
            n = len(datasets.ImageFolderDataset(root, size=cfg.size))
        else:
            size = stage.size or (self._critic_size() if stage.kind == "critic" else cfg.size)
            n = len(_paired(self.data, "train", size, cfg.augment, cfg.seed)) * (2 if stage.kind == "critic" else 1)
        tdl, _ = self._loaders(stage, range(n), None)
        return len(tdl)

    def plan_steps(self) -> list[int]:
        """Optimizer steps of each stage (0 for save-preds), before the ``max_steps`` cap."""
        plan = []
        for s in self.cfg.stages:
            try:
                plan.append(s.epochs * self._stage_batches(s) if s.trains else 0)
            except (TrainingError, DatasetError, OSError):  # that stage will fail with its own message
                plan.append(0)
        return plan

    def _set_plan(self, plan: list[int]) -> None:
        self._plan = list(plan)
        self.progress.set_plan(_cap_plan(self._plan, self.cfg.max_steps))

    def _update_plan(self, i: int, learn: Learner, seg_end: int) -> None:
        """The stage's real loader length replaces the estimate."""
        plan = getattr(self, "_plan", None)
        if not plan or i >= len(plan):
            return
        try:
            n = len(learn.train_dl)  # type: ignore[arg-type]
        except TypeError:
            return
        plan[i] = seg_end * n
        self._set_plan(plan)

    # -- stage plumbing --------------------------------------------------------------------------
    def _position(self, i: int, stage: StageConfig) -> tuple[int, int, tuple[int, int]] | None:
        """(start_epoch, skip_batches, segment) for stage ``i``, or None if it is done."""
        st = self.state
        segs = self.segments.setdefault(stage.name, [[0, stage.epochs]])
        if st is not None and st["stage_index"] == i and not st["stage_done"]:
            if stage.epochs > segs[-1][0]:  # --epochs changed on resume: the current segment follows
                segs[-1][1] = stage.epochs
            if st["epoch"] >= segs[-1][1]:
                self.stage_status[stage.name] = "done"
                return None
            return st["epoch"], st["batches"], (segs[-1][0], segs[-1][1])
        if self.stage_status.get(stage.name) == "done":
            is_last = i == len(self.cfg.stages) - 1
            done_to = segs[-1][1]
            if is_last and stage.trains and stage.epochs > done_to and st is not None and st.get("reason") != "early-stop":
                segs.append([done_to, stage.epochs])
                self.emit(Log(f"Extending stage '{stage.name}' from {done_to} to {stage.epochs} epochs."))
                return done_to, 0, (done_to, stage.epochs)
            return None
        segs[-1] = [0, stage.epochs]
        return 0, 0, (0, stage.epochs)

    def _restore_boundary(self, i: int) -> None:
        """Resuming at a stage boundary: RNG as it was when the previous stage ended, and the
        generator's optimizer when that stage trained the generator too."""
        st = self.state
        if st is None or st["stage_index"] == i:
            return
        if st.get("opt_owner") == "gen" and st.get("opt") is not None and self.cfg.stages[i].kind == "restore":
            self._pending_gen_opt = st["opt"]
        set_rng_state(st["rng"])
        self.state = None

    def _restore_state_into(self, learn: Learner, i: int) -> None:
        pending = getattr(self, "_pending_gen_opt", None)
        if pending is not None and learn.opt is not None and learn.opt is self.gen_opt:
            _load_opt_state(learn.opt, pending, learn.model)
            self._pending_gen_opt = None
        st = self.state
        if st is None or st["stage_index"] != i:
            return
        if st.get("opt") is not None and learn.opt is not None:
            _load_opt_state(learn.opt, st["opt"], learn.model)
        if st.get("crit_opt") is not None and getattr(learn, "crit_opt", None) is not None:
            learn.crit_opt.load_state_dict(st["crit_opt"])
        if st.get("scaler") is not None and learn.precision.scaler is not None:
            learn.precision.scaler.load_state_dict(st["scaler"])
        cbs = st.get("callbacks", {})
        for cb in learn.cbs:
            if type(cb).__name__ in cbs:
                cb.load_state_dict(cbs[type(cb).__name__])
        set_rng_state(st["rng"])

    def _common_callbacks(self, i: int, stage: StageConfig, monitor_best: bool, previews) -> list:
        cfg = self.cfg
        cbs: list = [Recorder(image_metrics=stage.kind in ("restore", "gan"),
                              on_row=self._on_row if self.main else None)]
        every = stage.checkpoint_every_steps if stage.checkpoint_every_steps is not None else cfg.checkpoint_every_steps
        cbs.append(CheckpointCallback(lambda reason, i=i: self._saver(reason, i), every_steps=every or 0,
                                      monitor="valid_loss" if monitor_best else "__none__"))
        if cfg.max_minutes or cfg.max_steps:
            cbs.append(BudgetCallback(max_seconds=cfg.max_minutes * 60 if cfg.max_minutes else None,
                                      max_steps=cfg.max_steps, started=self.t_start))
        if cfg.early_stop_patience and stage.kind == "restore":
            cbs.append(EarlyStopping(patience=cfg.early_stop_patience))
        if previews is not None:
            cbs.append(previews)
        return cbs

    def _saver(self, reason: str, i: int) -> Optional[Path]:
        return self.save_checkpoint(self._learn, i, reason)

    def _on_row(self, row: dict) -> None:
        self.folder.add_row(row)
        self.last_metrics = {k: v for k, v in row.items() if k not in ("stage", "epoch", "step")}

    def _learner_kwargs(self) -> dict:
        cfg = self.cfg
        return dict(device=self.device, precision=cfg.precision, channels_last=cfg.channels_last, wd=cfg.wd,
                    moms=tuple(cfg.moms), grad_clip=cfg.grad_clip, cancel=self.cancel, on_event=self.on_event)

    def _preview_samples(self, size: int):
        n = int(self.cfg.preview_samples or 0)
        if n <= 0:
            return []
        ds = _paired_valid(self.data, size, self.cfg.seed) or _paired(self.data, "train", size, False, self.cfg.seed)
        return [ds[j] for j in range(min(n, len(ds)))]

    def _loaders(self, stage: StageConfig, train_ds, valid_ds):
        cfg = self.cfg
        bs = stage.batch_size or cfg.batch_size
        if len(train_ds) // self.dinfo.world_size < bs:
            raise TrainingError(
                f"Stage '{stage.name}': {len(train_ds)} training items is fewer than one batch of {bs}"
                + (f" per process ({self.dinfo.world_size} processes)" if self.dinfo.enabled else "") + ".",
                hint="Lower --batch-size or add images to the dataset.")
        tdl = make_loader(train_ds, bs, train=True, seed=cfg.seed, workers=cfg.workers,
                          limit_batches=cfg.steps_per_epoch, dinfo=self.dinfo, device=self.device)
        vdl = None
        if valid_ds is not None and len(valid_ds) > 0:
            vdl = make_loader(valid_ds, bs, train=False, seed=cfg.seed, workers=cfg.workers,
                              limit_batches=cfg.valid_batches, dinfo=self.dinfo, device=self.device)
        return tdl, vdl

    # -- stages ----------------------------------------------------------------------------------
    def run_restore(self, i: int, stage: StageConfig, pos) -> None:
        cfg = self.cfg
        size = stage.size or cfg.size
        train_ds = _paired(self.data, "train", size, cfg.augment, cfg.seed)
        valid_ds = _paired_valid(self.data, size, cfg.seed)
        tdl, vdl = self._loaders(stage, train_ds, valid_ds)
        previews = None
        if self.main and cfg.preview_samples:
            previews = PreviewCallback(self._preview_samples(size), self.folder.samples)
        learn = Learner(self.gen, tdl, vdl, self.losses[stage.name], opt=self.gen_opt, stage=stage.name,
                        ddp=self.dinfo.enabled, **self._learner_kwargs())
        for cb in self._common_callbacks(i, stage, True, previews):
            learn.add_cb(cb)
        if learn.opt is None:
            learn.create_opt()
        self.gen_opt = learn.opt
        if stage.freeze and len(learn.layer_groups) > 1:
            learn.freeze()
        else:
            if stage.freeze:
                self.emit(Log(f"{self.gen_name} has no separate encoder; stage '{stage.name}' trains all of it."))
            learn.unfreeze()
        self._fit(learn, i, stage, pos)

    def _fit(self, learn: Learner, i: int, stage: StageConfig, pos) -> None:
        start_epoch, skip, (seg_start, seg_end) = pos
        learn.step = self.global_step
        self._learn = learn
        self._update_plan(i, learn, seg_end)
        if learn.opt is None:
            learn.create_opt()  # before restoring: the optimizer state must have somewhere to go
        self._restore_state_into(learn, i)
        self.state_consumed = True
        learn.fit(seg_end, stage.lr, one_cycle=stage.one_cycle, div=stage.div, div_final=stage.div_final,
                  pct_start=stage.pct_start, start_epoch=start_epoch, skip_batches=skip, segment_start=seg_start)
        self.global_step = learn.step
        if learn.fit_stop_reason == "budget":
            self.stopped = "budget"
        else:
            self.stage_status[stage.name] = "done"
            # a finished stage always ends with a checkpoint that says so
            if learn.fit_stop_reason != "early-stop" and self.main:
                last_epoch_ckpt = learn.position() == (seg_end, 0)
                if not last_epoch_ckpt:
                    self.save_checkpoint(learn, i, "epoch")

    def run_save_preds(self, i: int, stage: StageConfig) -> None:
        """Write the generator's predictions for every train/valid crop to preds/<split>/NNNNNN.png."""
        from ..events import Progress
        from .callbacks import save_png, to_uint8

        cfg = self.cfg
        g = self.gen.to(self.device)
        g.eval()
        size = self._critic_size()
        for split in ("train", "valid"):
            ds = _paired(self.data, split, size, False, cfg.seed) if split == "train" else _paired_valid(
                self.data, size, cfg.seed)
            if ds is None:
                continue
            out = self.folder.preds / split
            if self.main:
                out.mkdir(parents=True, exist_ok=True)
            n = len(ds)
            bs = stage.batch_size or cfg.batch_size
            if not self.main:  # rank 0 alone writes the run folder
                continue
            for start in range(0, n, bs):
                if self.cancel is not None:
                    self.cancel.check()
                idx = [j for j in range(start, min(n, start + bs)) if not (out / f"{j:06d}.png").exists()]
                if not idx:
                    continue
                xb = torch.stack([ds[j][0] for j in idx]).to(self.device)
                with torch.no_grad():
                    pred = g(xb).float().clamp(0, 1).cpu()
                for j, p in zip(idx, pred):
                    save_png(to_uint8(p), out / f"{j:06d}.png")
                self.emit(Progress(done=min(n, start + bs), total=n, message=f"saving {split} predictions",
                                   stage=stage.name))
        dist_.barrier()
        self.stage_status[stage.name] = "done"

    def _critic_size(self) -> int:
        for s in self.cfg.stages:
            if s.kind in ("critic", "gan"):
                return s.size or self.cfg.size
        return self.cfg.size

    def run_critic(self, i: int, stage: StageConfig, pos) -> None:
        from ..losses import AdaptiveLoss, accuracy_thresh_expand

        cfg = self.cfg
        size = stage.size or self._critic_size()
        train_ds = CriticDataset(_paired(self.data, "train", size, False, cfg.seed), self.folder.preds / "train",
                                 seed=cfg.seed)
        vpaired = _paired_valid(self.data, size, cfg.seed)
        valid_ds = CriticDataset(vpaired, self.folder.preds / "valid", flip=False) if vpaired is not None else None
        tdl, vdl = self._loaders(stage, train_ds, valid_ds)
        loss = AdaptiveLoss(nn.BCEWithLogitsLoss())
        learn = Learner(self.critic, tdl, vdl, loss, stage=stage.name, ddp=self.dinfo.enabled,
                        **self._learner_kwargs())
        for cb in self._common_callbacks(i, stage, False, None):
            learn.add_cb(cb)
        learn.get_cb(Recorder).metrics = {"accuracy": accuracy_thresh_expand}
        self._fit(learn, i, stage, pos)

    def run_gan(self, i: int, stage: StageConfig, pos) -> None:
        from .gan import AdaptiveGANSwitcher, GANLearner, GANLoss, GANModule, GANTrainer

        cfg = self.cfg
        size = stage.size or cfg.size
        train_ds = _paired(self.data, "train", size, cfg.augment, cfg.seed)
        valid_ds = _paired_valid(self.data, size, cfg.seed)
        tdl, vdl = self._loaders(stage, train_ds, valid_ds)
        gan = GANModule(self.gen, self.critic)
        from ..models.registry import IMAGENET_STD

        # the pixel term in the lesson's (ImageNet-normalised) units, so gan_weights mean what they did there
        loss = GANLoss(self.losses[stage.name], kind="bce", weights=cfg.gan_weights,
                       pixel_std=IMAGENET_STD if cfg.gan_pixel_loss in ("mse", "l1") else None)
        previews = None
        if self.main and cfg.preview_samples:
            previews = PreviewCallback(self._preview_samples(size), self.folder.samples, critic=lambda: self.critic)
        learn = GANLearner(gan, tdl, vdl, loss, critic_lr_mult=cfg.critic_lr_mult, betas=tuple(cfg.gan_betas),
                           switch_eval=cfg.switch_eval, stage=stage.name, **self._learner_kwargs())
        learn.add_cb(GANTrainer(gen_first=False))
        learn.add_cb(AdaptiveGANSwitcher(gen_thresh=cfg.gen_thresh, critic_thresh=cfg.critic_thresh))
        for cb in self._common_callbacks(i, stage, False, previews):
            learn.add_cb(cb)
        learn.create_opt()
        self._fit(learn, i, stage, pos)

    def run_wgan(self, i: int, stage: StageConfig, pos) -> None:
        from .. import datasets
        from .gan import FixedGANSwitcher, GANLearner, GANLoss, GANModule, GANTrainer, NoiseDataset, NoiseGrid

        cfg = self.cfg
        root = self.data / "hr" if (self.data / "hr").is_dir() else self.data
        images = datasets.ImageFolderDataset(root, size=cfg.size)
        if len(images) == 0:
            raise DatasetError(f"No images found in {root}.")
        train_ds = NoiseDataset(images, cfg.noise_size, seed=cfg.seed)
        tdl, _ = self._loaders(stage, train_ds, None)
        gan = GANModule(self.gen, self.critic)
        loss = GANLoss(kind="wasserstein")
        g = torch.Generator().manual_seed(cfg.seed + 12345)
        noise = torch.randn(max(1, cfg.preview_samples), cfg.noise_size, generator=g)
        learn = GANLearner(gan, tdl, None, loss, critic_lr_mult=cfg.critic_lr_mult, betas=tuple(cfg.gan_betas),
                           clip=cfg.clip, switch_eval=cfg.switch_eval, real_transform=lambda t: t * 2 - 1,
                           stage=stage.name, **self._learner_kwargs())
        learn.add_cb(GANTrainer(gen_first=False))
        learn.add_cb(FixedGANSwitcher(n_crit=cfg.n_critic, n_gen=1))
        learn.add_cb(_NoiseEpoch(train_ds))
        grid = NoiseGrid(noise, self.folder.samples if self.main else None) if cfg.preview_samples else None
        for cb in self._common_callbacks(i, stage, False, grid):
            learn.add_cb(cb)
        learn.create_opt()
        self._fit(learn, i, stage, pos)

    # -- main ----------------------------------------------------------------------------------
    def final_model(self) -> Optional[Path]:
        if not self.main or self.gen is None:
            return None
        summary = {
            "recipe": self.cfg.recipe,
            "steps": self.global_step,
            "stages": [s.name for s in self.cfg.stages if self.stage_status.get(s.name) == "done"],
            "stopped": self.stopped,
            "seconds": round(self.elapsed_before + time.perf_counter() - self.t_start, 1),
            "metrics": self.last_metrics,
            "dataset": str(self.data) if self.data else None,
        }
        return _save_weights(self.folder.model_path, self.gen, self.gen_name, self.gen_opts,
                             self._info({"summary": summary}))

    def _budget_spent(self) -> bool:
        """Before a stage with work left: the budget is used up, so the run stops here (resumable)."""
        if not _budget_spent_at(self.cfg, self.global_step, time.perf_counter() - self.t_start):
            return False
        self.stopped = "budget"
        self.emit(Log("Training budget reached at a stage boundary; stopping (resumable)."))
        return True

    def run(self) -> RunResult:
        cfg = self.cfg
        cfg.validate()
        resuming = self.resume and self.folder.holds_run()
        if self.resume and not resuming:
            raise TrainingError(f"Nothing to resume in {self.folder.root}: it holds no run.",
                                hint="Start the run without --resume.")
        if not self.resume and self.folder.holds_run():
            raise TrainingError(f"{self.folder.root} already holds a training run.",
                                hint="Continue it with --resume, or choose another --out folder.")
        self.check_data()
        seed_everything(cfg.seed)
        has_ckpt = resuming and (self.folder.ckpt / "last.json").exists()
        self.build_models(load_pretrained=not has_ckpt)
        self.build_losses()
        if self.dinfo.enabled and any(s.kind in ("gan", "wgan") for s in cfg.stages):
            raise TrainingError("GAN stages run in a single process; start this recipe without torchrun.")
        self.folder.create()
        if self.main:
            atomic_bytes(self.folder.config_path, cfg.to_json().encode("utf-8"))
        dist_.barrier()
        if resuming:
            if self.main:  # temp files of a write that was killed (kill -9 during a checkpoint)
                stale = remove_stale_parts(self.folder.ckpt) + remove_stale_parts(self.folder.root)
                if stale:
                    self.emit(Log(f"Removed {len(stale)} unfinished file(s) left by an interrupted write "
                                  f"({', '.join(p.name for p in stale[:3])}{', ...' if len(stale) > 3 else ''})."))
            self.folder.load_rows()
            if self.load_last():
                st = self.state
                names = [s.name for s in cfg.stages]
                cut = names.index(st["stage"]) if st["stage"] in names else len(names)
                keep = []
                for r in self.folder.rows:
                    si = names.index(r.get("stage")) if r.get("stage") in names else -1
                    ep = int(float(r.get("epoch", 0)))
                    if si < cut or (si == cut and ep < st["epoch"]) or (si == cut and st["stage_done"]):
                        keep.append(r)
                self.folder.rows = keep
                self.folder.write_rows()
                where = ("its end" if st["stage_done"] else
                         f"epoch {st['epoch'] + 1}" + (f", batch {st['batches'] + 1}" if st["batches"] else ""))
                self.emit(Log(f"Resuming {self.folder.root}: stage '{st['stage']}' at {where} (step {st['step']})."))
        total = len(cfg.stages)
        if self.main:
            self._set_plan(self.plan_steps())
        for i, stage in enumerate(cfg.stages):
            if self.stopped:
                break
            if stage.kind == "save-preds":
                if self.stage_status.get(stage.name) == "done":
                    continue
                if self._budget_spent():
                    break
                self.emit(StageStart(name=stage.name, index=i, total=total, epochs=0))
                self._restore_boundary(i)
                self.run_save_preds(i, stage)
                continue
            pos = self._position(i, stage)
            if pos is None:
                continue
            if self._budget_spent():
                break
            self.emit(StageStart(name=stage.name, index=i, total=total, epochs=stage.epochs))
            runner = {"restore": self.run_restore, "critic": self.run_critic, "gan": self.run_gan,
                      "wgan": self.run_wgan}[stage.kind]
            self._restore_boundary(i)
            runner(i, stage, pos)
            self.state = None
        model_path = self.final_model()
        dist_.barrier()
        finished = not self.stopped and all(self.stage_status.get(s.name) == "done" for s in cfg.stages)
        result = RunResult(out=self.folder.root, model_path=model_path, finished=finished, stopped=self.stopped,
                           steps=self.global_step, metrics=dict(self.last_metrics),
                           stages_done=[s.name for s in cfg.stages if self.stage_status.get(s.name) == "done"],
                           seconds=time.perf_counter() - self.t_start, generator=self.gen)
        self.emit(Finished(summary={"out": str(self.folder.root), "model": str(model_path) if model_path else None,
                                    "finished": finished, "stopped": self.stopped, "steps": self.global_step,
                                    "metrics": dict(self.last_metrics)}))
        return result


def _load_opt_state(opt: torch.optim.Optimizer, saved: dict, model: nn.Module) -> None:
    """``opt.load_state_dict(saved)``; a state saved when the model had one layer group (unet-lite
    before its three) is regrouped: same parameters, its (decay, no-decay) order mapped to ours."""
    try:
        opt.load_state_dict(saved)
        return
    except ValueError:
        groups = saved.get("param_groups", [])
        if not groups or any(g.get("layer_group", 0) != 0 for g in groups):
            raise
    ours = [p for g in opt.param_groups for p in g["params"]]
    decays = {id(p) for g in opt.param_groups if g["weight_decay"] for p in g["params"]}
    mine = {id(p) for p in ours}
    order = [p for p in model.parameters() if id(p) in mine]  # the one layer group's order
    old = [p for p in order if id(p) in decays] + [p for p in order if id(p) not in decays]
    sizes = [len(g["params"]) for g in groups]
    if sum(sizes) != len(ours) or len(old) != len(ours) or (len(groups) == 2 and sizes[0] != len(decays)):
        raise TrainingError("The saved optimizer state does not fit this model's parameters; "
                            "start the run again rather than resume it.")
    index = {id(p): j for j, p in enumerate(ours)}
    flat = [k for g in groups for k in g["params"]]
    state = {index[id(old[n])]: saved["state"][k] for n, k in enumerate(flat) if k in saved["state"]}
    fresh = opt.state_dict()
    opt.load_state_dict({"state": state, "param_groups": fresh["param_groups"]})


def _budget_spent_at(cfg: TrainConfig, step: int, seconds: float) -> bool:
    """Whether ``--max-steps`` / ``--max-minutes`` are used up at ``step`` after ``seconds``."""
    if cfg.max_steps and step >= cfg.max_steps:
        return True
    return bool(cfg.max_minutes) and seconds >= cfg.max_minutes * 60


def _cap_plan(plan: list[int], max_steps: Optional[int]) -> list[int]:
    """``plan`` cut so that its sum is at most ``max_steps`` (the run stops there)."""
    if not max_steps:
        return list(plan)
    out, left = [], int(max_steps)
    for n in plan:
        out.append(min(n, left))
        left -= out[-1]
    return out


class _NoiseEpoch(Callback):
    """Tell the NoiseDataset which epoch it serves (noise depends on (seed, epoch, index))."""

    order = 0

    def __init__(self, ds) -> None:
        self.ds = ds

    def before_train(self) -> None:
        self.ds.set_epoch(self.learn.epoch)


def resume_config(out: str | Path, **overrides: Any) -> TrainConfig:
    """The saved config of run ``out`` with the overrides a resume may change."""
    from .recipes import apply_overrides

    path = Path(out) / "config.json"
    if not path.exists():
        raise TrainingError(f"Nothing to resume in {out}: no config.json.", hint="Start the run without --resume.")
    cfg = TrainConfig.load(path)
    bad = sorted(k for k, v in overrides.items() if v is not None and k not in RESUME_CHANGEABLE)
    if bad:
        raise TrainingError(f"A resumed run keeps its settings; cannot change {', '.join(bad)} with --resume.",
                            hint=f"Changeable on resume: {', '.join(RESUME_CHANGEABLE)}.")
    cfg = apply_overrides(cfg, **{k: v for k, v in overrides.items() if k != "out"})
    cfg.out = str(out)
    return cfg


def train(config: TrainConfig | dict | str | Path, *, on_event: Optional[EventCallback] = None,
          cancel: Optional[CancelToken] = None, resume: bool = False) -> RunResult:
    """Run (or with ``resume=True`` continue) the training described by ``config``.

    Raises TrainingError / DatasetError / WeightsError before anything is written when the run
    cannot start; Cancelled after writing a resumable checkpoint when ``cancel`` is set.
    """
    if isinstance(config, (str, Path)):
        config = TrainConfig.load(config)
    elif isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    if not config.out:
        raise TrainingError("No run folder given: pass --out RUN.")
    run = _Run(config, on_event, cancel, resume)
    try:
        return run.run()
    except Cancelled:
        emit(run.on_event, Log(f"Cancelled; resume with: lesson7-studio train --out {config.out} --resume"))
        raise
