"""Layers after fastai v2: norms, res blocks, ICNR pixel shuffle, self-attention."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from lesson7_studio.core.models.layers import (
    ConvLayer,
    Flatten,
    MergeLayer,
    PixelShuffle_ICNR,
    ResBlock,
    SelfAttention,
    SequentialEx,
    SigmoidRange,
    icnr_init_,
    res_block,
    self_attention_reference,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait



@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_conv_layer_batch_order_and_bias():
    layer = ConvLayer(3, 8)
    assert [type(m) for m in layer] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]  # conv, BN, act (bn_1st)
    assert layer[0].bias is None
    assert torch.all(layer[1].weight == 1) and torch.allclose(layer[1].bias, torch.full((8,), 1e-3))
    assert layer(torch.rand(2, 3, 10, 14)).shape == (2, 8, 10, 14)


def test_conv_layer_batch_zero_and_none():
    assert torch.all(ConvLayer(3, 8, norm_type="batch_zero")[1].weight == 0)
    plain = ConvLayer(3, 8, norm_type="none", act_cls=None)
    assert len(plain) == 1 and plain[0].bias is not None


@pytest.mark.parametrize(
    "norm_type,keys",
    [
        ("weight", {"0.parametrizations.weight.original0", "0.parametrizations.weight.original1", "0.bias"}),
        ("spectral", {"0.parametrizations.weight.original", "0.parametrizations.weight.0._u",
                      "0.parametrizations.weight.0._v", "0.bias"}),
    ],
)
def test_conv_layer_weight_and_spectral_norm_state_round_trip(norm_type, keys):
    layer = ConvLayer(4, 6, norm_type=norm_type)
    assert parametrize.is_parametrized(layer[0], "weight")
    assert set(layer.state_dict()) == keys
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    layer.train()
    layer(torch.rand(1, 4, 8, 8))  # spectral norm updates u, v in training
    layer.eval()
    fresh = ConvLayer(4, 6, norm_type=norm_type).eval()
    fresh.load_state_dict(layer.state_dict())
    x = torch.rand(2, 4, 8, 8)
    assert torch.equal(layer(x), fresh(x))


def test_weight_norm_keeps_the_initial_weight():
    torch.manual_seed(1)
    plain = ConvLayer(4, 6, norm_type="none")
    torch.manual_seed(1)
    normed = ConvLayer(4, 6, norm_type="weight")
    assert torch.allclose(plain[0].weight, normed[0].weight, atol=1e-6)


def test_spectral_norm_bounds_the_weight():
    layer = ConvLayer(16, 16, ks=1, norm_type="spectral", act_cls=None).train()
    for _ in range(5):
        layer(torch.rand(1, 16, 4, 4))
    sigma = torch.linalg.matrix_norm(layer[0].weight.detach().reshape(16, 16), ord=2).item()
    assert sigma == pytest.approx(1.0, abs=0.05)


def test_transpose_conv_layer_doubles_size():
    layer = ConvLayer(8, 4, 4, 2, 1, transpose=True)
    assert isinstance(layer[0], nn.ConvTranspose2d)
    assert layer(torch.rand(1, 8, 5, 7)).shape == (1, 4, 10, 14)


def test_res_block_adds_and_starts_near_identity():
    blk = res_block(8).eval()  # second BN has gamma 0: conv path outputs relu(beta = 1e-3)
    x = torch.randn(2, 8, 6, 6)
    assert torch.allclose(blk(x), x + 1e-3, atol=1e-6)


def test_dense_res_block_concatenates():
    blk = res_block(8, dense=True, norm_type="spectral").eval()
    x = torch.randn(2, 8, 6, 6)
    y = blk(x)
    assert y.shape == (2, 16, 6, 6)
    assert torch.equal(y[:, 8:], x)  # MergeLayer(dense=True): cat([f(x), x])
    assert torch.equal(y[:, :8], blk.layers[1](blk.layers[0](x)))


def test_merge_layer_and_sequential_ex():
    seq = SequentialEx(nn.Identity(), MergeLayer())
    x = torch.randn(1, 2, 3, 3)
    assert torch.equal(seq(x), 2 * x)
    assert SequentialEx(nn.Identity(), MergeLayer(dense=True))(x).shape == (1, 4, 3, 3)


def test_resblock_v2_shapes_and_idpath():
    blk = ResBlock(1, 8, 16, stride=2)
    assert len(blk.idpath) == 2  # AvgPool then 1x1 ConvLayer
    assert isinstance(blk.idpath[0], nn.AvgPool2d)
    assert blk(torch.rand(2, 8, 10, 10)).shape == (2, 16, 5, 5)
    same = ResBlock(1, 8, 8, norm_type="weight")
    assert len(same.idpath) == 0
    assert len(same.convpath[1]) == 1  # second conv: no norm layer, no activation (weight norm wraps the conv)
    bottle = ResBlock(4, 8, 8)
    assert bottle(torch.rand(1, 32, 6, 6)).shape == (1, 32, 6, 6)


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("norm_type", ["weight", "none", "spectral"])
def test_icnr_gives_constant_blocks_at_init(scale, norm_type):
    ps = PixelShuffle_ICNR(6, 5, scale=scale, norm_type=norm_type).eval()
    x = torch.randn(2, 6, 4, 7)
    y = ps(x)
    assert y.shape == (2, 5, 4 * scale, 7 * scale)
    blocks = y.reshape(2, 5, 4, scale, 7, scale)
    ref = blocks[:, :, :, :1, :, :1]
    assert torch.allclose(blocks, ref.expand_as(blocks), atol=1e-6)
    assert y.abs().sum() > 0  # not trivially constant
    # and it really is the nearest-neighbour upsampling of one 1x1 conv
    assert torch.allclose(y, torch.nn.functional.interpolate(ref.reshape(2, 5, 4, 7), scale_factor=scale), atol=1e-6)


def test_icnr_init_shares_kernels_in_pixel_shuffle_order():
    w = torch.empty(12, 3, 1, 1)
    icnr_init_(w, scale=2)
    for c in range(3):
        for r in range(1, 4):
            assert torch.equal(w[c * 4 + r], w[c * 4])
    assert not torch.equal(w[0], w[4])


def test_pixel_shuffle_blur_keeps_size():
    ps = PixelShuffle_ICNR(4, blur=True)
    assert isinstance(ps[-1], nn.AvgPool2d) and isinstance(ps[-2], nn.ReplicationPad2d)
    assert ps(torch.rand(1, 4, 5, 6)).shape == (1, 4, 10, 12)


def test_self_attention_is_identity_at_init():
    sa = SelfAttention(16)
    assert sa.gamma.item() == 0.0
    x = torch.randn(2, 16, 5, 6)
    assert torch.equal(sa(x), x)
    assert sa.query[0].parametrizations.weight.original.shape == (2, 16, 1)  # spectral-normed 1x1 Conv1d


def test_self_attention_matches_fastai_formula():
    sa = SelfAttention(16).eval()
    with torch.no_grad():
        sa.gamma.fill_(0.7)
    x = torch.randn(2, 16, 5, 6)
    y = sa(x)
    assert not torch.allclose(y, x)
    assert torch.allclose(y, self_attention_reference(sa, x), atol=1e-5)


def test_sigmoid_range_and_flatten():
    sr = SigmoidRange(-3, 3)
    y = sr(torch.tensor([-100.0, 0.0, 100.0]))
    assert y.tolist() == pytest.approx([-3.0, 0.0, 3.0])
    assert Flatten()(torch.rand(2, 3, 4, 5)).shape == (2, 60)


def test_bake_parametrizations_keeps_outputs_and_spares_copies():
    import copy

    from lesson7_studio.core.models.layers import bake_parametrizations

    net = nn.Sequential(ConvLayer(4, 8, norm_type="weight"), ConvLayer(8, 8, norm_type="spectral", xtra=SelfAttention(8)))
    with torch.no_grad():
        net[1][-1].gamma.fill_(0.5)
    net.eval()
    copy_ = copy.deepcopy(net)
    x = torch.rand(2, 4, 6, 6)
    with torch.no_grad():
        y = net(x)
    bake_parametrizations(copy_)
    assert not any(parametrize.is_parametrized(m) for m in copy_.modules())
    assert "0.0.weight" in copy_.state_dict()
    with torch.no_grad():
        assert torch.allclose(copy_(x), y, atol=1e-6)
        assert torch.equal(net(x), y)  # the original still works (torch's remove_parametrizations breaks it)


def test_self_attention_inference_runs_in_chunks_with_the_same_result(monkeypatch):
    from lesson7_studio.core.models import layers

    sa = SelfAttention(16).eval()
    with torch.no_grad():
        sa.gamma.fill_(0.8)
    x = torch.randn(2, 16, 40, 60) * 0.3  # 2400 positions: above the chunking threshold
    monkeypatch.setattr(layers, "_CHUNK_ELEMENTS", 2400 * 100)  # several chunks, a ragged last one
    calls = []
    real = layers.chunked_attention
    monkeypatch.setattr(layers, "chunked_attention", lambda *a: calls.append(1) or real(*a))
    with torch.no_grad():
        chunked = sa(x)
    assert calls, "inference over 2400 positions should use chunked attention"
    with torch.enable_grad():
        fused = sa(x).detach()
    ref = self_attention_reference(sa, x)
    assert torch.allclose(chunked, fused, atol=1e-5)
    assert torch.allclose(chunked, ref, atol=1e-5)
    sa.chunk_inference = False  # fastai's way: one N x N map
    calls.clear()
    with torch.no_grad():
        assert torch.allclose(sa(x), ref, atol=1e-5)
    assert not calls


def test_chunked_attention_keeps_float32_logits_for_bf16_inputs():
    from lesson7_studio.core.models.layers import chunked_attention

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 300, 8, generator=g) * 4, torch.randn(1, 300, 8, generator=g) * 4
    v = torch.randn(1, 300, 24, generator=g)
    ref = torch.softmax(q @ k.transpose(1, 2), -1) @ v
    out = chunked_attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert out.dtype == torch.bfloat16 and out.shape == (1, 300, 24)
    # bf16 inputs and output, float32 logits: the error is the inputs' rounding, not the logits'
    assert (out.float() - ref).abs().mean() < 0.05
