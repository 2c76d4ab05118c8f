"""Model zoo: fidelity to fastai 2.8, shapes, ranges, registry behaviour."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lesson7_studio.core import models
from lesson7_studio.core.errors import Lesson7Error, ModelError
from lesson7_studio.core.models.layers import SelfAttention

# Parameter counts of fastai 2.8.12 (torch 2.14.1, torchvision 0.29.1), pretrained=False, printed by
#   from fastai.vision.all import *; from fastai.vision.gan import *
#   n = lambda m: sum(p.numel() for p in m.parameters())
#   n(create_unet_model(resnet34, 3, (128, 128), pretrained=False, blur=True,
#                       norm_type=NormType.Weight, self_attention=SA, y_range=(-3., 3.)))
#   n(gan_critic()); n(basic_generator(64, 3, n_extra_layers=1)); n(basic_critic(64, 3, n_extra_layers=1))
# (resnet18 / resnet50 the same way with self_attention=True.)
FASTAI_2_8 = {
    ("unet-resnet34", True): 41_413_534,
    ("unet-resnet34", False): 41_229_213,
    ("unet-resnet18", True): 31_305_374,
    ("unet-resnet50", True): 342_050_398,
    "gan-critic": 44_705_665,
    "wgan-generator": 3_613_696,
    "wgan-critic": 2_802_625,
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait



@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name,sa", [("unet-resnet34", True), ("unet-resnet34", False), ("unet-resnet18", True),
                                     ("unet-resnet50", True)])
def test_unet_param_count_equals_fastai(name, sa):
    # the lesson's settings: blur, weight norm, y_range (-3, 3), 3 outputs (all defaults here)
    info = models.describe(name, self_attention=sa, blur=True, norm_type="weight", y_range=(-3, 3), n_out=3)
    assert info.params == FASTAI_2_8[(name, sa)]


@pytest.mark.parametrize("name", ["gan-critic", "wgan-generator", "wgan-critic"])
def test_gan_param_counts_equal_fastai(name):
    assert models.describe(name).params == FASTAI_2_8[name]


def test_describe_counts_match_a_real_build():
    net = models.create("gan-critic")
    assert sum(p.numel() for p in net.parameters()) == models.describe("gan-critic").params


def test_names_and_kinds():
    assert models.names() == [
        "unet-resnet18", "unet-resnet34", "unet-resnet50", "unet-densenet121", "unet-lite",
        "gan-critic", "wgan-generator", "wgan-critic", "cnn-classifier", "resnet-classifier", "densenet-classifier",
        "rnn-model0", "rnn-model1", "rnn-model2", "rnn-model3", "rnn-model4", "rnn-model5",
    ]
    assert models.names("critic") == ["gan-critic", "wgan-critic"]
    assert set(models.names("restorer")) == {"unet-resnet18", "unet-resnet34", "unet-resnet50",
                                             "unet-densenet121", "unet-lite"}


def test_unet_descriptor():
    info = models.describe("unet-resnet34")
    assert (info.kind, info.scale, info.model_scale, info.size_multiple) == ("restorer", 2, 1, 32)
    assert info.mean == models.IMAGENET_MEAN and info.std == models.IMAGENET_STD
    assert info.options["pretrained"] is False and info.uses_pretrained is None
    assert models.describe("unet-resnet34", pretrained=True).uses_pretrained == "resnet34-b627a593.pth"


@pytest.fixture(scope="module")
def unet18():
    torch.manual_seed(0)
    return models.create("unet-resnet18", y_range=(-1.5, 2.0)).eval()


@pytest.mark.parametrize("hw", [(64, 96), (96, 64), (32, 32)])
def test_unet_output_in_y_range_and_input_sized(unet18, hw):
    with torch.no_grad():
        y = unet18(torch.randn(2, 3, *hw) * 3)
    assert y.shape == (2, 3, *hw)
    assert y.min() >= -1.5 and y.max() <= 2.0
    assert y.std() > 0


def test_unet_trains_in_train_mode(unet18):
    net = models.create("unet-resnet18", self_attention=False, last_cross=False, y_range=None, norm_type="batch")
    assert net.res is None and net.y_range is None
    y = net(torch.rand(2, 3, 32, 64))
    assert y.shape == (2, 3, 32, 64)
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_unet_structure_follows_fastai():
    with torch.device("meta"):
        net = models.create("unet-resnet34")
    assert net.skip_idxs == [2, 4, 5, 6]  # relu, layer1, layer2, layer3 (fastai's hooks)
    assert len(net.blocks) == 4
    sa_blocks = [i for i, b in enumerate(net.blocks) if isinstance(b.conv2[-1], SelfAttention)]
    assert sa_blocks == [1]  # third block from the end
    assert all(isinstance(b.shuf[-1], torch.nn.AvgPool2d) for b in net.blocks)  # blur everywhere
    assert net.res.convpath[0][0].in_channels == 96 + 3  # last cross: concat of the input
    assert isinstance(net.encoder, torch.nn.Module)


def test_unet_layer_groups_split_like_fastai():
    with torch.device("meta"):
        net = models.create("unet-resnet18")
    groups = net.layer_groups()
    assert len(groups) == 3
    ids = [{id(p) for p in g} for g in groups]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
    assert sum(len(g) for g in groups) == len(list(net.parameters()))
    enc = list(net.encoder.children())
    assert ids[0] == {id(p) for m in enc[:6] for p in m.parameters()}  # conv1 .. layer2
    assert ids[1] == {id(p) for m in enc[6:] for p in m.parameters()}  # layer3, layer4
    for p in net.encoder.parameters():
        p.requires_grad_(False)
    assert all(p.requires_grad for p in groups[2])


def test_densenet_unet_has_skip_connections():
    with torch.device("meta"):
        net = models.create("unet-densenet121")
    assert net.skip_idxs == [2, 4, 6, 8]  # relu0, denseblock1, denseblock2, denseblock3
    assert len(net.blocks) == 4
    assert len(net.layer_groups()[0]) > 0 and len(net.layer_groups()[1]) > 0


def test_unet_restorer_convention(unet18):
    r = models.restorer("unet-resnet18", net=unet18, scale=2, y_range=(-1.5, 2.0)).eval()
    with torch.no_grad():
        y = r(torch.rand(1, 3, 16, 24))  # upsampled to 32x48 first
    assert y.shape == (1, 3, 32, 48)
    assert y.min() >= 0 and y.max() <= 1


def test_unet_lite_shapes_and_bicubic_start():
    net = models.create("unet-lite")
    info = models.describe("unet-lite")
    assert 1_500_000 <= info.params <= 4_000_000
    assert (info.scale, info.model_scale, info.size_multiple, info.mean) == (2, 2, 8, None)
    x = torch.rand(2, 3, 16, 24)
    y = net(x)
    assert y.shape == (2, 3, 32, 48)
    # the tail starts at zero: an untrained model is bicubic upsampling
    assert torch.allclose(y, F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False), atol=1e-6)
    # encoder / decoder / tail: discriminative learning rates when fine-tuning; every parameter once
    groups = net.layer_groups()
    assert len(groups) == 3 and sum(len(g) for g in groups) == len(list(net.parameters()))
    assert len({id(p) for g in groups for p in g}) == len(list(net.parameters()))


@pytest.mark.parametrize("scale", [1, 3, 4])
def test_unet_lite_scales(scale):
    r = models.restorer("unet-lite", scale=scale, nf=16, blocks=1, norm_type="weight").eval()
    assert r.pre_scale == 1
    y = r(torch.rand(1, 3, 8, 16))
    assert y.shape == (1, 3, 8 * scale, 16 * scale)


def test_unet_lite_learns():
    net = models.create("unet-lite", nf=8, blocks=1)
    x = torch.rand(2, 3, 16, 16)
    target = F.interpolate(x, scale_factor=2, mode="nearest") * 0.5 + 0.2
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    losses = []
    for _ in range(5):
        loss = F.l1_loss(net(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.97 * losses[0]


def test_gan_critic_patch_map():
    net = models.create("gan-critic", nf=16).eval()
    assert net(torch.rand(2, 3, 128, 128)).shape == (2, 25)  # (128/16 - 3)^2 patches
    assert models.describe("gan-critic").size_multiple == 16


def test_wgan_pair():
    g = models.create("wgan-generator").eval()
    c = models.create("wgan-critic").eval()
    img = g(torch.randn(3, 100))
    assert img.shape == (3, 3, 64, 64) and img.abs().max() <= 1
    assert torch.equal(g(torch.ones(1, 100)), g(torch.ones(1, 100, 1, 1)))
    assert c(img).shape == (3, 1)
    assert isinstance(c[1][-1], torch.nn.LeakyReLU)


@pytest.mark.parametrize("name", ["resnet-classifier", "densenet-classifier"])
def test_classifiers(name):
    net = models.create(name)
    assert net(torch.rand(4, 1, 28, 28)).shape == (4, 10)
    assert models.create(name, n_in=3, n_classes=5).eval()(torch.rand(1, 3, 28, 28)).shape == (1, 5)


def test_dense_classifier_concatenates():
    net = models.create("densenet-classifier")
    assert net[1][0][0].in_channels == 16  # stage 1 output: 8 + 8 concatenated


def test_unknown_model_lists_valid_names():
    with pytest.raises(ModelError) as ei:
        models.create("unet-resnet99")
    msg = str(ei.value)
    assert isinstance(ei.value, Lesson7Error)
    assert "unet-resnet99" in msg and "unet-resnet34" in msg and "gan-critic" in msg


def test_unknown_option_lists_valid_options():
    with pytest.raises(ModelError) as ei:
        models.describe("unet-lite", depth=3)
    msg = str(ei.value)
    assert "depth" in msg and "nf" in msg and "self_attention" in msg


@pytest.mark.parametrize("opts", [{"norm_type": "group"}, {"scale": 5}, {"nf": "wide"}, {"blur": "maybe"}])
def test_bad_option_values(opts):
    with pytest.raises(ModelError):
        models.create("unet-lite", **opts)


def test_bad_y_range():
    with pytest.raises(ModelError):
        models.create("unet-resnet18", y_range=(3, -3))


def test_options_coerced_from_strings():
    info = models.describe("unet-resnet34", self_attention="false", y_range="-1,1", scale="4")
    assert info.options["self_attention"] is False
    assert info.options["y_range"] == (-1.0, 1.0)
    assert info.scale == 4


def test_every_restorer_family_has_layer_groups():
    for name in ("unet-resnet18", "unet-densenet121", "unet-lite"):  # resnet34/50 are the resnet18 code
        with torch.device("meta"):
            net = models.create(name)
        groups = net.layer_groups()
        assert sum(len(g) for g in groups) == len(list(net.parameters())), name


# Key names and shapes of fastai 2.8.12 DynamicUnet state dicts (create_unet_model(arch, 3, (128, 128),
# pretrained=False, blur=True, y_range=(-3., 3.), norm_type=..., self_attention=...)), dumped with
# {k: list(v.shape) for k, v in model.state_dict().items()}. Loading such weights with strict=True is
# a stronger check than parameter counts: every tensor has a place of the same shape. (Checked once
# with fastai installed: after conversion our nets give fastai's outputs exactly when self-attention
# uses fastai's bmm formula, and within 2e-4 with scaled_dot_product_attention.)
FASTAI_KEYS = Path(__file__).with_name("test_models_fastai_keys.json")


@pytest.mark.parametrize("variant,name,norm_type,sa", [
    ("resnet34_True_Weight", "unet-resnet34", "weight", True),
    ("resnet18_False_Spectral", "unet-resnet18", "spectral", False),
    ("resnet18_True_Batch", "unet-resnet18", "batch", True),
])
def test_fastai_unet_weights_convert_and_fit(variant, name, norm_type, sa):
    from lesson7_studio.core.models.unet import convert_fastai_unet

    shapes = json.loads(FASTAI_KEYS.read_text())[variant]
    sd = {k: torch.zeros(s) for k, s in shapes.items()}
    got_name, opts, converted = convert_fastai_unet({"module." + k: v for k, v in sd.items()})
    assert got_name == name
    assert (opts["norm_type"], opts["self_attention"], opts["n_out"], opts["last_cross"]) == (norm_type, sa, 3, True)
    with torch.device("meta"):
        ours = models.create(got_name, **opts).state_dict()
    assert set(converted) == set(ours)
    assert all(tuple(converted[k].shape) == tuple(ours[k].shape) for k in ours)


def test_fastai_conversion_rejects_other_state_dicts():
    from lesson7_studio.core.models.unet import convert_fastai_unet

    with pytest.raises(ModelError):
        convert_fastai_unet({"conv.weight": torch.zeros(1)})
