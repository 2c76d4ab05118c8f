"""The lesson's classifiers and the six human-numbers RNNs: shapes, layer order, state, sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lesson7_studio.core import models
from lesson7_studio.core.errors import ModelError
from lesson7_studio.core.models import rnn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_lesson_models_are_registered_with_kinds_and_bounds():
    assert models.names("classifier") == ["cnn-classifier", "resnet-classifier", "densenet-classifier"]
    assert models.names("language-model") == [f"rnn-model{i}" for i in range(6)]
    with pytest.raises(ModelError, match="<= 4096"):
        models.create("rnn-model4", n_hidden=10_000)
    with pytest.raises(ModelError, match=">= 2"):
        models.create("cnn-classifier", n_classes=1)


def test_parameter_counts():
    nv, nh = 38, 64
    simple = nv * nh + (nh * nh + nh) + (nh * nv + nv) + 2 * nh  # embedding, h_h, h_o, batchnorm
    for i in range(4):
        assert models.describe(f"rnn-model{i}").params == simple == 9190
    gru_layer = 3 * (nh * nh + nh * nh + 2 * nh)
    assert models.describe("rnn-model5").params == nv * nh + 2 * gru_layer + (nh * nv + nv) + 2 * nh
    # plain CNN: bias-free 3x3 convs + BatchNorm: 1-8-16-32-16-10
    chans = [1, 8, 16, 32, 16, 10]
    assert models.describe("cnn-classifier").params == sum(a * b * 9 + 2 * b for a, b in zip(chans, chans[1:]))


def test_classifier_layers_follow_fastai_v1_conv_layer():
    net = models.create("resnet-classifier")
    first = net[0][0]
    assert [type(m) for m in first] == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d] and first[0].bias is None
    block = net[0][1].eval()
    bn2 = block[1][2]
    assert float(bn2.weight.detach().abs().sum()) == 0  # the res_block's second BN starts at zero
    x = torch.rand(2, 8, 14, 14)
    with torch.no_grad():  # so the block starts as the identity (plus fastai's BN bias of 1e-3)
        assert torch.allclose(block(x), x + bn2.bias.view(1, -1, 1, 1))
    for name in ("cnn-classifier", "resnet-classifier", "densenet-classifier"):
        assert models.create(name)(torch.rand(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("i", range(6))
def test_rnn_shapes(i):
    net = models.create(f"rnn-model{i}")
    x = torch.randint(0, 38, (4, 3))
    out = net(x)
    assert out.shape == ((4, 38) if i < 2 else (4, 3, 38))
    assert torch.isfinite(out).all()


def test_model0_is_model1_unrolled():
    m0, m1 = rnn.Model0(), rnn.Model1()
    m1.load_state_dict(m0.state_dict())
    m0.eval(), m1.eval()
    x = torch.randint(0, 38, (5, 3))
    assert torch.allclose(m0(x), m1(x), atol=1e-6)
    with pytest.raises(AssertionError, match="1 to 3 tokens"):
        m0(torch.randint(0, 38, (2, 4)))


@pytest.mark.parametrize("i", [3, 4, 5])
def test_stateful_models_carry_the_hidden_state(i):
    net = models.create(f"rnn-model{i}").eval()
    a, b = torch.randint(0, 38, (2, 4, 5))
    with torch.no_grad():
        net.reset()
        first = net(a)
        carried = net(b)
        net.reset()
        fresh = net(b)
    assert not torch.allclose(carried, fresh)
    assert net.h is not None and not net.h.requires_grad
    assert not any(k == "h" or k.endswith(".h") for k in net.state_dict())  # weights only
    with torch.no_grad():
        net.reset()
        assert torch.allclose(net(a), first)
        net(torch.randint(0, 38, (3, 5)))  # another batch size starts from zeros
    assert net.h.shape[-2] == 3


def test_model2_has_no_state():
    net = models.create("rnn-model2").eval()
    a, b = torch.randint(0, 38, (2, 4, 5))
    with torch.no_grad():
        y1 = net(b)
        net(a)
        assert torch.allclose(net(b), y1)
