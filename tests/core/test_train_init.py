"""Fine-tuning: a run can start from a saved checkpoint (``init``)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lesson7_studio.core import checkpoint, models
from lesson7_studio.core.errors import TrainingError
from lesson7_studio.core.train.recipes import apply_overrides, get_recipe
from lesson7_studio.core.train.run import train


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait


def _dataset(root, n=4, size=32, scale=2):
    rng = np.random.default_rng(0)
    (root / "hr").mkdir(parents=True)
    (root / "lr").mkdir()
    names = []
    for i in range(n):
        hr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(hr).save(root / "hr" / f"{i}.png")
        Image.fromarray(hr).resize((size // scale, size // scale), Image.BICUBIC).save(root / "lr" / f"{i}.png")
        names.append(f"{i}.png")
    items = {n_: {"hr": f"hr/{n_}", "lr": f"lr/{n_}"} for n_ in names}
    meta = {"recipe": {"name": "superres-x2", "steps": []}, "recipe_hash": "x", "seed": 0, "scale": scale,
            "train": names[:3], "valid": names[3:], "items": items, "skipped": [], "counts": {}}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def _cfg(data, out, **kw):
    return apply_overrides(get_recipe("quick"), data=str(data), out=str(out), epochs=1, size=16, batch_size=2,
                           device="cpu", precision="fp32", workers=0, max_steps=1, **kw)


def test_run_starts_from_the_init_checkpoint_and_takes_its_architecture(tmp_path):
    data = _dataset(tmp_path / "data")
    net = models.create("unet-lite", nf=8, blocks=1, scale=2)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01)  # not the default init
    init = checkpoint.save_model(tmp_path / "init.safetensors", net, "unet-lite", {"nf": 8, "blocks": 1, "scale": 2})
    cfg = _cfg(data, tmp_path / "run", init=str(init), lr=1e-12)  # lr ~ 0: weights stay as loaded
    result = train(cfg)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["arch"] == "unet-lite" and saved["arch_options"]["nf"] == 8
    trained = checkpoint.load_model(result.model_path).net
    trained_params = dict(trained.named_parameters())
    for k, a in net.named_parameters():  # (spectral norm's power-iteration buffers move; weights don't)
        assert torch.allclose(a, trained_params[k], atol=1e-6), k


def test_init_with_another_scale_or_a_missing_file_is_refused(tmp_path):
    data = _dataset(tmp_path / "data")
    net = models.create("unet-lite", nf=8, blocks=1, scale=4)
    init = checkpoint.save_model(tmp_path / "x4.safetensors", net, "unet-lite", {"nf": 8, "blocks": 1, "scale": 4})
    with pytest.raises(TrainingError, match="scale 4"):
        train(_cfg(data, tmp_path / "run", init=str(init)))
    with pytest.raises(TrainingError, match="does not exist"):
        train(_cfg(data, tmp_path / "run2", init=str(tmp_path / "nope.safetensors")))
