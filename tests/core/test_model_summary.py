"""core.models.summary: the registry's catalogue and a model's size, as the Model panel shows them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lesson7_studio.core import models
from lesson7_studio.core.errors import ModelError
from lesson7_studio.core.models import summary


def test_catalogue_lists_restorers_first_then_by_kind():
    entries = summary.catalog()
    names = [e.name for e in entries]
    restorers = models.names("restorer")
    assert names[: len(restorers)] == restorers and set(names) == set(models.names())
    ranks = [summary.KIND_ORDER.index(e.kind) for e in entries]
    assert ranks == sorted(ranks)
    by_name = {e.name: e for e in entries}
    lite = by_name["unet-lite"]
    assert lite.params is None and lite.defaults()["nf"] == 48  # restorers: no count in the list
    rnn = by_name["rnn-model5"]
    assert rnn.kind == "language-model" and rnn.params == models.describe("rnn-model5").params


def test_activation_bytes_adds_up_leaf_outputs_per_item():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    x = torch.empty(2, 3, 8, 8, device="meta")
    with torch.device("meta"):
        meta_net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    assert summary.activation_bytes(meta_net, x) == (4 * 64 + 4 * 64 + 2 * 64) * 4
    wn = nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 4, 1))  # its weight is not an activation
    assert summary.activation_bytes(wn, torch.zeros(1, 3, 2, 2)) == 4 * 4 * 4

    class Refuses(nn.Module):
        def forward(self, x):
            return x.sum().item()

    assert summary.activation_bytes(Refuses(), torch.empty(1, 3, 4, 4, device="meta")) is None
    assert net(torch.zeros(1, 3, 8, 8)).shape == (1, 2, 8, 8)


def test_estimate_follows_options_and_size():
    small = summary.estimate("unet-lite", {"nf": 8}, 64)
    assert small.params == models.describe("unet-lite", nf=8).params
    assert small.weights_bytes == small.params * 4 and small.per == "one 64×64 image"
    bigger = summary.estimate("unet-lite", {"nf": 8}, 128)
    assert bigger.act_bytes > 3 * small.act_bytes  # four times the pixels
    wider = summary.estimate("unet-lite", {"nf": 16}, 64)
    assert wider.params > small.params and wider.act_bytes > small.act_bytes
    rnn = summary.estimate("rnn-model0", {}, 256)
    assert rnn.kind == "language-model" and rnn.per == "one row of 3 tokens"
    digit = summary.estimate("cnn-classifier", {}, 256)
    assert digit.per == "one 28×28 image" and digit.act_bytes > 0


def test_bad_options_name_the_option():
    with pytest.raises(ModelError, match="nope"):
        summary.resolve_options("unet-lite", {"nope": 1})
    assert summary.weights_report("unet-lite", {"nf": 8}) is None
