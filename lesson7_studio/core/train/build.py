"""What a run trains with: the generator's and critic's registry options, the checkpoint a
fine-tune starts from, and the losses of its stages (built once, before any training, so that
missing pretrained weights fail before anything is written)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from torch import nn

from ..errors import TrainingError
from ..events import EventCallback
from .data import check_crop_size
from .recipes import StageConfig, TrainConfig
from .run_folder import load_weights


def init_checkpoint(cfg: TrainConfig) -> Path:
    """The checkpoint file named by ``cfg.init`` ("starter" is the bundled starter model)."""
    if cfg.init == "starter":
        from ..restore import starter_model_path

        path = starter_model_path()
    else:
        path = Path(cfg.init)
    if not path.is_file():
        raise TrainingError(f"Cannot fine-tune from {path}: the file does not exist.")
    return path


def adopt_init(cfg: TrainConfig, path: Path, scale: int, data: Optional[Path]) -> None:
    """Take the generator's architecture and options (into ``cfg``) from the checkpoint it starts from."""
    from .. import checkpoint
    from ..models.registry import with_legacy_options  # options added since: the file's values

    meta = checkpoint.read_metadata(path)
    if meta.get("kind", "restorer") != "restorer":
        raise TrainingError(f"{path} holds a {meta.get('kind')}, not an image restorer; it cannot start a run.")
    if int(meta.get("scale", scale)) != scale:
        raise TrainingError(
            f"{path} restores at scale {meta.get('scale')} but dataset {data} has scale {scale}.",
            hint="Fine-tune on a dataset built with a recipe of the same scale.")
    cfg.arch = meta["name"]
    stored = with_legacy_options(meta["name"], meta.get("options", {}))
    cfg.arch_options = {k: v for k, v in stored.items() if k not in ("scale", "pretrained")}


def options_for(arch: str, cfg: TrainConfig, scale: int, *, pretrained: bool) -> dict:
    """Registry options of generator ``arch`` for this run (scale, pretrained encoder, sizes)."""
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


def critic_options(cfg: TrainConfig) -> dict:
    from .. import models

    names = {o.name for o in models.options_of(cfg.critic)}
    opts = dict(cfg.critic_options)
    if "in_size" in names:
        opts.setdefault("in_size", cfg.size)
    return opts


def build_generator(cfg: TrainConfig, scale: int, data: Optional[Path],
                    load_pretrained: bool) -> tuple[nn.Module, dict, Optional[Path]]:
    """(generator, its registry options as checkpoints store them, the fine-tune start file or None).

    WGAN recipes get their noise generator; the others a Restorer at the dataset's ``scale``,
    whose crop sizes are checked against it. With ``cfg.init`` the start file's architecture
    and options replace the recipe's (in ``cfg``), and with ``load_pretrained`` its weights
    are loaded (a resumed run loads its own checkpoint instead)."""
    from .. import models

    init = None
    if any(s.kind == "wgan" for s in cfg.stages):
        opts = options_for(cfg.arch, cfg, 1, pretrained=False)
        gen = models.create(cfg.arch, **opts)
    else:
        init = init_checkpoint(cfg) if cfg.init else None
        if init is not None:
            adopt_init(cfg, init, scale, data)
        opts = options_for(cfg.arch, cfg, scale, pretrained=load_pretrained and init is None)
        gen = models.restorer(cfg.arch, **opts)
        if init is not None and load_pretrained:
            load_weights(init, gen)
        for s in cfg.stages:
            if s.kind in ("restore", "gan", "save-preds", "critic"):
                check_crop_size(s.size or cfg.size, scale, gen.info, s.name)
    if "pretrained" in opts:  # checkpoints store the options that rebuild the net without downloading anything
        opts["pretrained"] = False
    return gen, opts, init


def build_critic(cfg: TrainConfig) -> tuple[Optional[nn.Module], dict]:
    """(critic, its options) when a stage trains one, else (None, {})."""
    from .. import models

    if not any(s.kind in ("critic", "gan", "wgan") for s in cfg.stages):
        return None, {}
    opts = critic_options(cfg)
    return models.create(cfg.critic, **opts), opts


class StageLosses:
    """The pixel / feature loss of each stage; stages with the same loss share one (VGG is big)."""

    def __init__(self, cfg: TrainConfig, on_event: Optional[EventCallback] = None) -> None:
        self.cfg = cfg
        self.on_event = on_event
        self._cache: dict[tuple[str, str], nn.Module] = {}

    def pixel(self, name: str, opts: Optional[dict]) -> nn.Module:
        from ..losses import build_loss

        key = (name, json.dumps(opts or {}, sort_keys=True))
        if key not in self._cache:
            self._cache[key] = build_loss(name, pretrained=self.cfg.pretrained, on_event=self.on_event, **(opts or {}))
        return self._cache[key]

    def restore(self, s: StageConfig) -> nn.Module:
        """The loss of a restore stage: its own, or the run's."""
        cfg = self.cfg
        name = s.loss or cfg.loss
        opts = s.loss_options if s.loss_options is not None else (cfg.loss_options if name == cfg.loss else {})
        return self.pixel(name, opts)

    def all_stages(self) -> dict[str, nn.Module]:
        """Stage name -> loss, for every stage that has one (restore and gan stages)."""
        cfg = self.cfg
        out: dict[str, nn.Module] = {}
        for s in cfg.stages:
            if s.kind == "restore":
                out[s.name] = self.restore(s)
            elif s.kind == "gan":
                out[s.name] = self.pixel(cfg.gan_pixel_loss, cfg.loss_options if cfg.gan_pixel_loss == cfg.loss else {})
        return out
