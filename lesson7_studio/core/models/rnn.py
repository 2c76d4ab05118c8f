"""The six language models of lesson 7's human-numbers notebook, each a little better than the last.

All map token ids to next-token logits over a vocabulary of ``n_vocab`` (38 for human numbers)
with ``n_hidden`` (64) activations:

* ``rnn-model0``: three tokens in, Embedding + Linear + BatchNorm, the loop unrolled by hand;
  one prediction (the 4th token).
* ``rnn-model1``: the same network written as a loop (any number of tokens in).
* ``rnn-model2``: an output at every step (B, T) -> (B, T, n_vocab).
* ``rnn-model3``: as Model2, with the hidden state kept from one batch to the next.
* ``rnn-model4``: ``nn.RNN`` instead of the hand-written loop.
* ``rnn-model5``: a 2-layer ``nn.GRU``.

Models 3-5 keep their hidden state between calls (detached: back-propagation stops at the
batch boundary) for as long as the batch size stays the same; ``reset()`` starts again from
zeros. The state is not part of the state dict, so checkpoints hold weights only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .registry import Option, register


class BatchNorm1dFlat(nn.BatchNorm1d):
    """BatchNorm1d over the last dimension of a (B, T, C) tensor (fastai's ``BatchNorm1dFlat``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return super().forward(x)
        b, t, c = x.shape
        return super().forward(x.reshape(b * t, c)).reshape(b, t, c)


class _Base(nn.Module):
    stateful = False
    per_step = True  # one output per input token (else one output for the whole sequence)

    def __init__(self, n_vocab: int, n_hidden: int) -> None:
        super().__init__()
        self.n_vocab, self.n_hidden = n_vocab, n_hidden
        self.i_h = nn.Embedding(n_vocab, n_hidden)  # input -> hidden (the lesson's green arrow)
        self.h_o = nn.Linear(n_hidden, n_vocab)  # hidden -> output (blue arrow)
        self.h: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the hidden state (stateful models start the next call from zeros)."""
        self.h = None

    def _state(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        h = self.h
        if h is None or tuple(h.shape) != shape or h.device != like.device:
            h = torch.zeros(shape, device=like.device, dtype=like.dtype)
        return h


class Model0(_Base):
    """(B, 1..3) -> (B, n_vocab): the lesson's first network, each step written out."""

    per_step = False

    def __init__(self, n_vocab: int = 38, n_hidden: int = 64) -> None:
        super().__init__(n_vocab, n_hidden)
        self.h_h = nn.Linear(n_hidden, n_hidden)  # hidden -> hidden (brown arrow)
        self.bn = nn.BatchNorm1d(n_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 2 and 1 <= x.shape[1] <= 3, f"Model0 reads 1 to 3 tokens, got shape {tuple(x.shape)}"
        h = self.bn(F.relu(self.h_h(self.i_h(x[:, 0]))))
        if x.shape[1] > 1:
            h = h + self.i_h(x[:, 1])
            h = self.bn(F.relu(self.h_h(h)))
        if x.shape[1] > 2:
            h = h + self.i_h(x[:, 2])
            h = self.bn(F.relu(self.h_h(h)))
        return self.h_o(h)


class Model1(_Base):
    """(B, T) -> (B, n_vocab): Model0 as a loop."""

    per_step = False

    def __init__(self, n_vocab: int = 38, n_hidden: int = 64) -> None:
        super().__init__(n_vocab, n_hidden)
        self.h_h = nn.Linear(n_hidden, n_hidden)
        self.bn = nn.BatchNorm1d(n_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(x.shape[0], self.n_hidden, device=x.device)
        for i in range(x.shape[1]):
            h = h + self.i_h(x[:, i])
            h = self.bn(F.relu(self.h_h(h)))
        return self.h_o(h)


class Model2(_Base):
    """(B, T) -> (B, T, n_vocab): a prediction after every token."""

    def __init__(self, n_vocab: int = 38, n_hidden: int = 64) -> None:
        super().__init__(n_vocab, n_hidden)
        self.h_h = nn.Linear(n_hidden, n_hidden)
        self.bn = nn.BatchNorm1d(n_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(x.shape[0], self.n_hidden, device=x.device)
        res = []
        for i in range(x.shape[1]):
            h = h + self.i_h(x[:, i])
            h = F.relu(self.h_h(h))
            res.append(self.h_o(self.bn(h)))
        return torch.stack(res, dim=1)


class Model3(_Base):
    """Model2 whose hidden state carries over to the next batch."""

    stateful = True

    def __init__(self, n_vocab: int = 38, n_hidden: int = 64) -> None:
        super().__init__(n_vocab, n_hidden)
        self.h_h = nn.Linear(n_hidden, n_hidden)
        self.bn = nn.BatchNorm1d(n_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.i_h(x)  # (B, T, nh)
        h = self._state((x.shape[0], self.n_hidden), emb)
        res = []
        for i in range(x.shape[1]):
            h = F.relu(self.h_h(h + emb[:, i]))
            res.append(self.bn(h))
        self.h = h.detach()
        return self.h_o(torch.stack(res, dim=1))


class Model4(_Base):
    """``nn.RNN`` (one layer, tanh) with BatchNorm before the output layer; state kept."""

    stateful = True

    def __init__(self, n_vocab: int = 38, n_hidden: int = 64) -> None:
        super().__init__(n_vocab, n_hidden)
        self.rnn = nn.RNN(n_hidden, n_hidden, batch_first=True)
        self.bn = BatchNorm1dFlat(n_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.i_h(x)
        res, h = self.rnn(emb, self._state((1, x.shape[0], self.n_hidden), emb))
        self.h = h.detach()
        return self.h_o(self.bn(res))


class Model5(_Base):
    """A multi-layer ``nn.GRU`` (2 layers in the lesson); state kept."""

    stateful = True

    def __init__(self, n_vocab: int = 38, n_hidden: int = 64, n_layers: int = 2) -> None:
        super().__init__(n_vocab, n_hidden)
        self.n_layers = n_layers
        self.rnn = nn.GRU(n_hidden, n_hidden, n_layers, batch_first=True)
        self.bn = BatchNorm1dFlat(n_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.i_h(x)
        res, h = self.rnn(emb, self._state((self.n_layers, x.shape[0], self.n_hidden), emb))
        self.h = h.detach()
        return self.h_o(self.bn(res))


_OPTIONS = (
    Option("n_vocab", int, 38, "Vocabulary size (38 for human numbers with fastai's special tokens).",
           minimum=2, maximum=1_000_000),
    Option("n_hidden", int, 64, "Hidden activations per step (nh).", minimum=1, maximum=4096),
)


def _facts(o: dict[str, Any]) -> dict[str, Any]:
    return dict(in_channels=o["n_vocab"], out_channels=o["n_vocab"], size_multiple=1)


_DESCRIPTIONS = {
    0: "Lesson 7 human-numbers Model0: three tokens, Embedding + Linear + BN, unrolled by hand",
    1: "Lesson 7 human-numbers Model1: Model0 written as a loop",
    2: "Lesson 7 human-numbers Model2: a prediction after every token",
    3: "Lesson 7 human-numbers Model3: hidden state kept across batches",
    4: "Lesson 7 human-numbers Model4: nn.RNN",
    5: "Lesson 7 human-numbers Model5: 2-layer nn.GRU",
}

MODEL_CLASSES = {0: Model0, 1: Model1, 2: Model2, 3: Model3, 4: Model4}
RNN_NAMES = [f"rnn-model{i}" for i in range(6)]


def _register_simple(i: int) -> None:
    cls = MODEL_CLASSES[i]

    @register(f"rnn-model{i}", kind="language-model", options=_OPTIONS, facts=_facts, description=_DESCRIPTIONS[i])
    def _factory(n_vocab: int, n_hidden: int) -> nn.Module:
        return cls(n_vocab, n_hidden)


for _i in range(5):
    _register_simple(_i)


@register("rnn-model5", kind="language-model", facts=_facts, description=_DESCRIPTIONS[5],
          options=_OPTIONS + (Option("n_layers", int, 2, "GRU layers.", minimum=1, maximum=8),))
def _model5(n_vocab: int, n_hidden: int, n_layers: int) -> nn.Module:
    return Model5(n_vocab, n_hidden, n_layers)
