"""Checkpoints: self-describing .safetensors round trips; foreign files only through safe paths."""

import json
import math
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from lesson7_studio import __version__
from lesson7_studio.core import checkpoint, models
from lesson7_studio.core.errors import CheckpointError, ModelError, UnsafeFileError

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait



def random_net(name, seed=0, **opts):
    """Build ``name`` without its (slow) init and fill every tensor with seeded random values.

    Every weight then matters for the output, so a round trip that lost or mixed up any tensor
    (spectral-norm u/v, weight-norm g/v, BatchNorm statistics ...) changes the output.
    """
    with torch.device("meta"):
        net = models.create(name, **opts)
    net.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in net.named_parameters():
            if p.dim() > 1 and not pname.endswith("original0"):
                fan_in = p[0].numel()
                p.uniform_(-1.0, 1.0, generator=gen).mul_(math.sqrt(3.0 / fan_in))
            else:  # biases, BN affine, weight-norm g, self-attention gamma
                p.uniform_(0.5, 1.0, generator=gen)
        for bname, b in net.named_buffers():
            if bname.endswith("running_var"):
                b.uniform_(0.5, 1.5, generator=gen)
            elif bname.endswith("running_mean"):
                b.uniform_(-0.1, 0.1, generator=gen)
            elif bname.endswith("_u") or bname.endswith("_v"):
                b.normal_(generator=gen)
                b.div_(b.norm())
            else:  # num_batches_tracked
                b.zero_()
    if any(n.endswith("_u") for n, _ in net.named_buffers()):
        # spectral norm: one power iteration so that sigma roughly matches the random weights
        net.train()
        with torch.no_grad():
            x = sample_input(name)
            net(x)
    return net.eval()


def sample_input(name):
    info = models.describe(name)
    if info.kind == "restorer":
        return torch.rand(2, 3, 32, 32)
    if name == "wgan-generator":
        return torch.randn(2, 100)
    if name == "gan-critic":
        return torch.rand(1, 3, 64, 64)
    if name == "wgan-critic":
        return torch.rand(2, 3, 64, 64)
    if info.kind == "language-model":
        return torch.randint(0, info.in_channels, (2, 3), generator=torch.Generator().manual_seed(0))
    return torch.rand(2, 1, 28, 28)


# The two giant U-Nets (342M and 148M parameters) write 0.6-1.4 GB checkpoints; they share the
# DynamicUnet code of unet-resnet18/34, so their round trip runs only with LESSON7_SLOW_TESTS=1.
GIANTS = {"unet-resnet50", "unet-densenet121"}
SLOW = os.environ.get("LESSON7_SLOW_TESTS") == "1"


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.skipif(n in GIANTS and not SLOW, reason="giant; set LESSON7_SLOW_TESTS=1"))
    for n in models.names()
])
def test_round_trip_gives_identical_outputs(tmp_path, name):
    torch.manual_seed(0)
    net = random_net(name)
    x = sample_input(name)
    with torch.no_grad():
        y = net(x)
    assert torch.isfinite(y).all() and y.abs().sum() > 0 and y.max() < 1e6
    path = checkpoint.save_model(tmp_path / "m.safetensors", net, name, {})
    del net
    loaded = checkpoint.load_model(path)
    assert not loaded.net.training
    with torch.no_grad():
        y2 = loaded.net(x)
    assert torch.equal(y, y2)
    assert loaded.name == name and loaded.info.name == name


def test_options_and_metadata_round_trip(tmp_path):
    opts = {"nf": 16, "blocks": 1, "scale": 3, "norm_type": "weight"}
    net = models.create("unet-lite", **opts)
    info = {"recipe": {"name": "decrappify-x2", "quality": (10, 70)}, "epochs": 3, "psnr": 31.5}
    path = checkpoint.save_model(tmp_path / "lite.safetensors", net, "unet-lite", opts, info=info)
    meta = checkpoint.read_metadata(path)
    assert meta["format_version"] == 1 and meta["name"] == "unet-lite" and meta["kind"] == "restorer"
    assert meta["options"] == {"nf": 16, "blocks": 1, "scale": 3, "self_attention": True, "blur": True,
                               "norm_type": "weight", "tail_act": "leaky"}
    assert (meta["scale"], meta["model_scale"], meta["size_multiple"]) == (3, 3, 8)
    assert meta["mean"] is None and meta["app_version"] == __version__ and meta["created"]
    assert meta["info"] == {"recipe": {"name": "decrappify-x2", "quality": [10, 70]}, "epochs": 3, "psnr": 31.5}
    assert meta["params"] == sum(p.numel() for p in net.parameters())
    loaded = checkpoint.load_model(path)
    assert loaded.options["nf"] == 16 and loaded.info.scale == 3
    assert loaded.restorer()(torch.rand(1, 3, 8, 8)).shape == (1, 3, 24, 24)


def test_tuple_options_come_back_as_tuples(tmp_path):
    net = random_net("unet-resnet18", y_range=(-2.0, 2.5), self_attention=False)
    path = checkpoint.save_model(tmp_path / "u.safetensors", net, "unet-resnet18",
                                 {"y_range": (-2.0, 2.5), "self_attention": False, "pretrained": True})
    assert checkpoint.read_metadata(path)["options"]["y_range"] == [-2.0, 2.5]  # JSON list in the header
    loaded = checkpoint.load_model(path)  # pretrained=True must not try to load ImageNet weights
    assert loaded.options["y_range"] == (-2.0, 2.5)
    assert loaded.net.y_range.low == -2.0 and loaded.net.y_range.high == 2.5
    assert loaded.info.mean == models.IMAGENET_MEAN


def test_norm_parametrizations_are_stored_by_name(tmp_path):
    from safetensors import safe_open

    net = random_net("gan-critic", nf=8)
    path = checkpoint.save_model(tmp_path / "c.safetensors", net, "gan-critic", {"nf": 8})
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
    assert "0.0.parametrizations.weight.original" in keys
    assert "0.0.parametrizations.weight.0._u" in keys and "0.0.parametrizations.weight.0._v" in keys
    lite = models.create("unet-lite", nf=8, blocks=1, norm_type="weight")
    path = checkpoint.save_model(tmp_path / "l.safetensors", lite, "unet-lite", {"nf": 8, "blocks": 1,
                                                                                  "norm_type": "weight"})
    with safe_open(str(path), framework="pt") as f:
        assert "head.0.parametrizations.weight.original0" in set(f.keys())


def test_loaded_spectral_norm_keeps_power_iterating_in_training(tmp_path):
    net = random_net("unet-lite", nf=8, blocks=1, norm_type="weight")
    path = checkpoint.save_model(tmp_path / "l.safetensors", net, "unet-lite",
                                 {"nf": 8, "blocks": 1, "norm_type": "weight"})
    loaded = checkpoint.load_model(path).net
    net.train()
    loaded.train()
    x = torch.rand(2, 3, 16, 16)
    u_before = net.middle[1].key[0].parametrizations.weight[0]._u.clone()
    for _ in range(2):
        with torch.no_grad():
            assert torch.equal(net(x), loaded(x))
    u_after = loaded.middle[1].key[0].parametrizations.weight[0]._u
    assert not torch.equal(u_after, u_before)  # the power iteration ran on the loaded net too
    assert torch.equal(u_after, net.middle[1].key[0].parametrizations.weight[0]._u)


def test_half_stores_fp16_and_loads_fp32(tmp_path):
    from safetensors import safe_open

    net = random_net("unet-lite", nf=16, blocks=1)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        y = net(x)
    full = checkpoint.save_model(tmp_path / "full.safetensors", net, "unet-lite", {"nf": 16, "blocks": 1})
    half = checkpoint.save_model(tmp_path / "half.safetensors", net, "unet-lite", {"nf": 16, "blocks": 1},
                                 half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    with safe_open(str(half), framework="pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16
    assert checkpoint.read_metadata(half)["dtype"] == "float16"
    loaded = checkpoint.load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.net.parameters())
    with torch.no_grad():
        assert torch.allclose(loaded.net(x), y, atol=5e-2)


def test_restorer_is_saved_as_its_net(tmp_path):
    r = models.restorer("unet-lite", nf=8, blocks=1).eval()
    with torch.no_grad():
        for p in r.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        y = r(x)
    path = checkpoint.save_model(tmp_path / "r.safetensors", r, "unet-lite", {"nf": 8, "blocks": 1})
    r2 = checkpoint.load_model(path).restorer()
    assert not r2.training
    with torch.no_grad():
        assert torch.equal(r2(x), y)


def test_restorer_of_a_critic_is_refused(tmp_path):
    path = checkpoint.save_model(tmp_path / "w.safetensors", models.create("wgan-critic"), "wgan-critic", {})
    with pytest.raises(ModelError):
        checkpoint.load_model(path).restorer()


def test_options_that_do_not_describe_the_net_are_refused(tmp_path):
    net = models.create("unet-lite", nf=8, blocks=1)
    with pytest.raises(ModelError, match="not those of"):
        checkpoint.save_model(tmp_path / "x.safetensors", net, "unet-lite", {"nf": 16})
    assert not any(tmp_path.iterdir())


def test_save_is_atomic(tmp_path, monkeypatch):
    net = models.create("wgan-critic")
    path = checkpoint.save_model(tmp_path / "m.safetensors", net, "wgan-critic", {})
    before = path.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]

    def boom(*args, **kwargs):
        with open(args[1], "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", boom)
    with pytest.raises(CheckpointError, match="disk full"):
        checkpoint.save_model(path, net, "wgan-critic", {})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def _write_safetensors(path, metadata):
    save_file({"w": torch.zeros(2)}, str(path), metadata=metadata)
    return path


def test_unknown_architecture_names_the_file(tmp_path):
    meta = {"format_version": 1, "name": "unet-vit-huge", "options": {}}
    path = _write_safetensors(tmp_path / "alien.safetensors", {"lesson7": json.dumps(meta)})
    with pytest.raises(CheckpointError) as ei:
        checkpoint.load_model(path)
    assert "alien.safetensors" in str(ei.value) and "unet-vit-huge" in str(ei.value)


@pytest.mark.parametrize("metadata,match", [
    ({"format": "pt"}, "not a Lesson7 Studio checkpoint"),
    ({"lesson7": "{not json"}, "damaged metadata"),
    ({"lesson7": json.dumps({"format_version": 7, "name": "unet-lite"})}, "format 7"),
    ({"lesson7": json.dumps([1, 2])}, "unknown format"),
])
def test_foreign_or_future_metadata(tmp_path, metadata, match):
    path = _write_safetensors(tmp_path / "odd.safetensors", metadata)
    with pytest.raises(CheckpointError, match=match) as ei:
        checkpoint.load_model(path)
    assert "odd.safetensors" in str(ei.value)
    assert not checkpoint.is_lesson7_checkpoint(path)


def test_garbage_and_missing_files(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        checkpoint.read_metadata(bad)
    with pytest.raises(CheckpointError, match="nothere"):
        checkpoint.load_model(tmp_path / "nothere.safetensors")


def test_wrong_tensors_for_the_architecture(tmp_path):
    meta = {"format_version": 1, "name": "wgan-critic", "options": {}}
    path = _write_safetensors(tmp_path / "wrong.safetensors", {"lesson7": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="wrong.safetensors"):
        checkpoint.load_model(path)


# --- foreign weights -------------------------------------------------------------------------


def test_foreign_plain_and_wrapped_state_dicts(tmp_path):
    sd = {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.randn(4)}
    torch.save(sd, tmp_path / "plain.pth")
    torch.save({"model": sd, "opt": {"lr": 0.1}}, tmp_path / "fastai.pth")  # fastai's learn.save
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3}, tmp_path / "lt.ckpt")
    save_file(sd, str(tmp_path / "st.safetensors"))
    for name in ("plain.pth", "fastai.pth", "lt.ckpt", "st.safetensors"):
        out = checkpoint.load_foreign_state_dict(tmp_path / name)
        assert set(out) == set(sd), name
        assert torch.equal(out["conv.weight"], sd["conv.weight"])


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickle_with_code_is_refused_and_never_runs(tmp_path):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "payload": _Payload(target)}, path)
    # the payload is live: plain unpickling of the same object does create the file
    probe = tmp_path / "probe.txt"
    pickle.loads(pickle.dumps(_Payload(probe)))
    assert probe.exists()

    with pytest.raises(UnsafeFileError) as ei:
        checkpoint.load_foreign_state_dict(path)
    assert "evil.pth" in str(ei.value)
    assert not target.exists()
    assert isinstance(ei.value, CheckpointError)


def test_legacy_pickle_with_code_is_refused(tmp_path):
    target = tmp_path / "pwned2.txt"
    path = tmp_path / "old.pt"
    with open(path, "wb") as f:
        pickle.dump({"w": _Payload(target)}, f, protocol=2)
    with pytest.raises(UnsafeFileError):
        checkpoint.load_foreign_state_dict(path)
    assert not target.exists()


def test_foreign_garbage_and_empty(tmp_path):
    (tmp_path / "junk.pth").write_bytes(os.urandom(100))
    with pytest.raises(CheckpointError, match="junk.pth"):
        checkpoint.load_foreign_state_dict(tmp_path / "junk.pth")
    torch.save({"epoch": 3}, tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="no tensors"):
        checkpoint.load_foreign_state_dict(tmp_path / "empty.pth")
