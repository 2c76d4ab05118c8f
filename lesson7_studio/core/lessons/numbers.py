"""The human-numbers dataset of lesson 7, generated token for token (no download).

fastai's ``URLs.HUMAN_NUMBERS`` holds ``train.txt`` (the numbers 1..8000) and ``valid.txt``
(8001..9999), one per line, written in English words without "and" ("eight thousand one",
"nine thousand nine hundred ninety nine"). The notebook joins each file's lines with ", " and
fastai's tokenizer makes one stream per file: ``xxbos one , two , three , ...``. The
vocabulary is built from the training stream: fastai v1's eight special tokens first (xxunk,
xxpad, xxbos, xxfld, xxmaj, xxup, xxrep, xxwrep), then the words by falling frequency: 38
tokens. The validation stream is 13,017 tokens long with its ``xxbos``.

:class:`StreamBatches` cuts a stream into batches as fastai v1's ``LanguageModelPreLoader``:
``bs`` rows starting at ``int(i * len / bs)``, each read on for ``bptt`` tokens per batch
(wrapping around to the start), ``ceil(len / (bs * bptt))`` batches; targets are the inputs
shifted by one token. Row ``i`` of one batch continues row ``i`` of the batch before, which
is what lets Models 3-5 carry their hidden state over.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError
from ..images import atomic_write

ONES = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SPECIAL_TOKENS = ["xxunk", "xxpad", "xxbos", "xxfld", "xxmaj", "xxup", "xxrep", "xxwrep"]  # fastai v1
UNK, BOS = "xxunk", "xxbos"
TRAIN_RANGE = (1, 8000)
VALID_RANGE = (8001, 9999)
MIN_FREQ = 3  # fastai v1 NumericalizeProcessor default


def number_words(n: int) -> str:
    """1 -> "one", 8001 -> "eight thousand one", 9999 -> "nine thousand nine hundred ninety nine"."""
    if not 1 <= n <= 999_999:
        raise ValueError(f"number_words covers 1..999999, got {n}")
    parts: list[str] = []
    if n >= 1000:
        parts += [number_words(n // 1000), "thousand"]
        n %= 1000
    if n >= 100:
        parts += [ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        parts.append(TENS[n // 10])
        n %= 10
    if n:
        parts.append(ONES[n])
    return " ".join(parts)


def lines(split: str) -> list[str]:
    """The lines of the lesson's ``train.txt`` or ``valid.txt``."""
    lo, hi = {"train": TRAIN_RANGE, "valid": VALID_RANGE}[split]
    return [number_words(n) for n in range(lo, hi + 1)]


def tokenize(text: str) -> list[str]:
    """fastai's tokens for this lower-case text: words and commas, ``xxbos`` first."""
    return [BOS] + text.replace(",", " , ").split()


def token_stream(split: str) -> list[str]:
    """``['xxbos', 'one', ',', 'two', ...]`` for "train" or "valid"."""
    return tokenize(", ".join(lines(split)))


@dataclass(frozen=True)
class Vocab:
    itos: tuple[str, ...]

    @property
    def stoi(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def numericalize(self, tokens: list[str]) -> np.ndarray:
        stoi, unk = self.stoi, self.itos.index(UNK)
        return np.array([stoi.get(t, unk) for t in tokens], dtype=np.int64)

    def textify(self, ids) -> str:
        return " ".join(self.itos[int(i)] for i in ids)

    @classmethod
    def build(cls, tokens: list[str], min_freq: int = MIN_FREQ) -> "Vocab":
        """fastai v1 ``Vocab.create``: words seen at least ``min_freq`` times by falling count
        (ties in order of first appearance), the special tokens moved to the front."""
        itos = [w for w, c in Counter(tokens).most_common() if c >= min_freq]
        for s in reversed(SPECIAL_TOKENS):
            if s in itos:
                itos.remove(s)
            itos.insert(0, s)
        return cls(tuple(itos))


@dataclass
class HumanNumbers:
    """Vocabulary and numericalized train / valid streams."""

    vocab: Vocab
    train: np.ndarray
    valid: np.ndarray


def human_numbers() -> HumanNumbers:
    train_tok = token_stream("train")
    vocab = Vocab.build(train_tok)
    return HumanNumbers(vocab, vocab.numericalize(train_tok), vocab.numericalize(token_stream("valid")))


def write_text_files(folder: str | os.PathLike) -> list[Path]:
    """Write the lesson's ``train.txt`` and ``valid.txt`` (one number a line) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for split in ("train", "valid"):
        path = folder / f"{split}.txt"
        with atomic_write(path) as tmp:
            Path(tmp).write_text("\n".join(lines(split)) + "\n", encoding="utf-8")
        out.append(path)
    return out


def read_text_files(folder: str | os.PathLike) -> HumanNumbers:
    """Streams from a folder holding ``train.txt`` and ``valid.txt`` (e.g. fastai's download)."""
    folder = Path(folder)
    texts = {}
    for split in ("train", "valid"):
        path = folder / f"{split}.txt"
        if not path.is_file():
            raise DatasetError(f"{folder} has no {split}.txt.",
                               hint="A human-numbers folder holds train.txt and valid.txt, one line per number; "
                               "leave --data out to use the generated one.")
        texts[split] = ", ".join(o.strip() for o in path.read_text(encoding="utf-8").splitlines() if o.strip())
    train_tok = tokenize(texts["train"])
    vocab = Vocab.build(train_tok)
    return HumanNumbers(vocab, vocab.numericalize(train_tok), vocab.numericalize(tokenize(texts["valid"])))


class _Skip:
    """The loader's ``sampler`` for the Learner: ``skip(items)`` resumes mid-epoch."""

    def __init__(self, loader: "StreamBatches") -> None:
        self.loader = loader

    def set_epoch(self, epoch: int) -> None:
        pass

    def skip(self, k: int) -> None:
        self.loader._skip = k // self.loader.batch_size


class StreamBatches:
    """Batches ``(x, y)`` of shape (bs, bptt) from one token stream (see the module doc).

    Every epoch yields the same batches (fastai's preloader has nothing to shuffle with one
    text). ``limit`` caps the batches per epoch (quick tests).
    """

    def __init__(self, ids: np.ndarray, bs: int, bptt: int, limit: int | None = None) -> None:
        n = len(ids)
        if n < 2:
            raise DatasetError("A token stream needs at least two tokens.")
        if bs < 1 or bptt < 1:
            raise DatasetError(f"Batch size and bptt must be at least 1 (got {bs}, {bptt}).")
        self.ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        self.batch_size, self.bptt = bs, bptt
        self.n_batches = math.ceil(n / (bs * bptt))
        if limit:
            self.n_batches = min(self.n_batches, int(limit))
        step = n / bs
        self.starts = torch.tensor([int(step * i) for i in range(bs)], dtype=torch.int64)
        self.sampler = _Skip(self)
        self._skip = 0

    def __len__(self) -> int:
        return self.n_batches

    def batch(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        pos = self.starts[:, None] + b * self.bptt + torch.arange(self.bptt + 1)[None, :]
        rows = self.ids[pos % len(self.ids)]  # (bs, bptt + 1), wrapping around the stream
        return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()

    def __iter__(self):
        first, self._skip = self._skip, 0
        for b in range(first, self.n_batches):
            yield self.batch(b)
