"""Pretrained weights: hub cache, offline errors, safe loading, downloads (from file:// URLs only)."""

import hashlib

import pytest
import torch

from lesson7_studio.core import models, weights
from lesson7_studio.core.errors import Cancelled, WeightsError
from lesson7_studio.core.events import CancelToken, Progress

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait



@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache under tmp_path (TORCH_HOME), offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("LESSON7_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_file_names_and_folder(hub):
    assert weights.weights_filename("resnet34") == "resnet34-b627a593.pth"
    assert weights.weights_filename("vgg16_bn") == "vgg16_bn-6c64b313.pth"
    assert weights.weights_filename("resnet50") == "resnet50-11ad3fa6.pth"  # torchvision DEFAULT (as fastai)
    assert weights.weights_dir() == hub
    assert weights.weights_path("densenet121") == hub / "densenet121-a639ec97.pth"
    assert weights.weights_url("resnet34").startswith("https://download.pytorch.org/models/")


def test_offline_missing_weights_say_which_file_and_where(hub):
    assert weights.weights_status("resnet34") == "offline"
    with pytest.raises(WeightsError) as ei:
        weights.resolve_pretrained("resnet34")
    msg = str(ei.value)
    assert "resnet34-b627a593.pth" in msg and str(hub) in msg


def test_pretrained_unet_offline_raises_weights_error(hub):
    with pytest.raises(WeightsError, match="resnet18-f37072fd.pth"):
        models.create("unet-resnet18", pretrained=True)


def test_download_false_never_downloads(hub, monkeypatch):
    monkeypatch.setenv("LESSON7_OFFLINE", "0")
    monkeypatch.setattr(weights, "download_url", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(WeightsError, match="downloading is off"):
        weights.resolve_pretrained("resnet18", download=False)


def test_unknown_arch():
    with pytest.raises(WeightsError, match="resnet34"):
        weights.resolve_pretrained("alexnet")


def test_found_weights_load_into_the_unet_encoder(hub):
    import torchvision

    torch.manual_seed(3)
    ref = torchvision.models.resnet18(weights=None)
    hub.mkdir(parents=True)
    torch.save(ref.state_dict(), hub / "resnet18-f37072fd.pth")
    assert weights.weights_status("resnet18") == "found"
    sd = weights.resolve_pretrained("resnet18")
    assert torch.equal(sd["conv1.weight"], ref.conv1.weight)
    net = models.create("unet-resnet18", pretrained=True)
    assert torch.equal(net.encoder[0].weight, ref.conv1.weight)
    assert torch.equal(net.encoder[7][1].conv2.weight, ref.layer4[1].conv2.weight)


def test_damaged_weights_file(hub):
    hub.mkdir(parents=True)
    (hub / "resnet18-f37072fd.pth").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="Cannot read"):
        weights.resolve_pretrained("resnet18")


def test_densenet_old_key_names_are_fixed():
    sd = {
        "features.denseblock1.denselayer1.norm.1.weight": torch.zeros(1),
        "features.denseblock1.denselayer1.conv.2.weight": torch.zeros(1),
        "features.conv0.weight": torch.zeros(1),
    }
    fixed = weights._fix_keys("densenet121", sd)
    assert set(fixed) == {"features.denseblock1.denselayer1.norm1.weight",
                          "features.denseblock1.denselayer1.conv2.weight", "features.conv0.weight"}
    assert weights._fix_keys("resnet18", sd) is sd


def _source(tmp_path, payload=b"x" * (3 << 20) + b"tail"):
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    return src, hashlib.sha256(payload).hexdigest()


def test_download_reports_progress_and_checks_hash(tmp_path):
    src, digest = _source(tmp_path)
    events = []
    dest = weights.download_url(src.as_uri(), tmp_path / "out" / "w-abcd.pth", hash_prefix=digest[:8],
                                on_event=events.append)
    assert dest.read_bytes() == src.read_bytes()
    prog = [e for e in events if isinstance(e, Progress)]
    assert prog[0].done == 0 and prog[-1].done == prog[-1].total == src.stat().st_size
    assert len(prog) >= 4  # 1 MiB chunks
    assert [p.name for p in dest.parent.iterdir()] == ["w-abcd.pth"]


def test_download_with_bad_hash_leaves_nothing(tmp_path):
    src, digest = _source(tmp_path)
    bad = "0" * 8 if not digest.startswith("0") else "1" * 8
    with pytest.raises(WeightsError, match="damaged"):
        weights.download_url(src.as_uri(), tmp_path / "out" / "w.pth", hash_prefix=bad)
    assert list((tmp_path / "out").iterdir()) == []


def test_download_can_be_cancelled(tmp_path):
    src, _ = _source(tmp_path)
    token = CancelToken()

    def on_event(ev):
        if isinstance(ev, Progress) and ev.done > 0:
            token.cancel()

    with pytest.raises(Cancelled):
        weights.download_url(src.as_uri(), tmp_path / "out" / "w.pth", on_event=on_event, cancel=token)
    assert list((tmp_path / "out").iterdir()) == []


def test_download_weights_fills_the_cache_when_online(hub, tmp_path, monkeypatch):
    import torchvision

    ref = torchvision.models.resnet18(weights=None).state_dict()
    tmp = tmp_path / "tmp.pth"
    torch.save(ref, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    src = tmp.rename(tmp_path / f"resnet18-{digest[:8]}.pth")  # torchvision's naming: sha256 prefix
    monkeypatch.setenv("LESSON7_OFFLINE", "0")
    monkeypatch.setattr(weights, "weights_url", lambda arch: src.as_uri())
    assert weights.weights_status("resnet18") == "download"
    events = []
    sd = weights.resolve_pretrained("resnet18", on_event=events.append)
    assert (hub / src.name).is_file()
    assert weights.weights_status("resnet18") == "found"
    assert torch.equal(sd["fc.weight"], ref["fc.weight"])
    assert any(isinstance(e, Progress) for e in events)
