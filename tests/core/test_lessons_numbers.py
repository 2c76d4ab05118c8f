"""Human numbers, token for token as the lesson's files and fastai v1's language-model loader."""

from __future__ import annotations

import numpy as np
import pytest

from lesson7_studio.core.errors import DatasetError
from lesson7_studio.core.lessons import numbers as hn


def test_number_words_without_and():
    assert hn.number_words(1) == "one"
    assert hn.number_words(15) == "fifteen"
    assert hn.number_words(40) == "forty"
    assert hn.number_words(101) == "one hundred one"
    assert hn.number_words(8000) == "eight thousand"
    assert hn.number_words(8001) == "eight thousand one"
    assert hn.number_words(9999) == "nine thousand nine hundred ninety nine"
    with pytest.raises(ValueError):
        hn.number_words(0)


def test_files_are_the_lessons():
    train, valid = hn.lines("train"), hn.lines("valid")
    assert len(train) == 8000 and len(valid) == 1999
    assert train[:3] == ["one", "two", "three"] and train[-1] == "eight thousand"
    assert valid[0] == "eight thousand one" and valid[-1] == "nine thousand nine hundred ninety nine"
    assert all(" and " not in line for line in train + valid)


def test_streams_and_vocabulary():
    d = hn.human_numbers()
    assert len(d.vocab) == 38
    assert d.vocab.itos[:8] == ("xxunk", "xxpad", "xxbos", "xxfld", "xxmaj", "xxup", "xxrep", "xxwrep")
    assert d.vocab.itos[8:11] == (",", "hundred", "thousand")  # by falling frequency
    assert len(d.valid) == 13017  # the notebook's len(data.valid_ds[0][0].data)
    assert d.vocab.textify(d.train[:6]) == "xxbos one , two , three"
    assert d.vocab.textify(d.valid[-6:]) == "nine thousand nine hundred ninety nine"
    assert (d.valid == d.vocab.itos.index("xxbos")).sum() == 1  # one text, one beginning-of-stream token


def test_validation_batches_match_the_notebook():
    d = hn.human_numbers()
    dl = hn.StreamBatches(d.valid, bs=64, bptt=70)
    assert len(dl) == 3  # data.bptt, len(data.valid_dl) == (70, 3)
    (x1, y1), (x2, y2), (x3, y3) = list(dl)
    assert x1.shape == y1.shape == (64, 70) and x1.numel() + x2.numel() + x3.numel() == 13440
    # x1[:,0] and y1[:,0] as printed by the notebook
    assert x1[:, 0].tolist() == [
        2, 8, 10, 11, 12, 10, 9, 8, 9, 13, 18, 24, 18, 14, 15, 10, 18, 8, 9, 8, 18, 24, 18, 10, 18, 10, 9, 8, 18, 19,
        10, 25, 19, 22, 19, 19, 23, 19, 10, 13, 10, 10, 8, 13, 8, 19, 9, 19, 34, 16, 10, 9, 8, 16, 8, 19, 9, 19, 10,
        19, 10, 19, 19, 19]
    assert y1[:, 0].tolist() == [
        18, 18, 26, 9, 8, 11, 31, 18, 25, 9, 10, 14, 10, 9, 8, 14, 10, 18, 25, 18, 10, 17, 10, 17, 8, 17, 20, 18, 9,
        9, 19, 8, 10, 15, 10, 10, 12, 10, 12, 8, 12, 13, 19, 9, 19, 10, 23, 10, 8, 8, 15, 16, 19, 9, 19, 10, 23, 10,
        18, 8, 18, 10, 10, 9]
    v = d.vocab
    assert v.textify(x1[0]).startswith("xxbos eight thousand one , eight thousand two ,")
    assert v.textify(x2[0]).startswith("thousand eighteen , eight thousand nineteen")  # rows continue
    assert v.textify(x1[1]).startswith(", eight thousand forty six")
    assert v.textify(x3[-1]).endswith("ninety nine xxbos eight thousand one , eight")  # wraps around
    assert (y1[:, :-1] == x1[:, 1:]).all()


def test_skip_resumes_mid_epoch_and_limit_caps():
    d = hn.human_numbers()
    dl = hn.StreamBatches(d.train, bs=8, bptt=5, limit=4)
    full = list(dl)
    assert len(full) == len(dl) == 4
    dl.sampler.skip(2 * 8)
    rest = list(dl)
    assert len(rest) == 2 and all((a[0] == b[0]).all() for a, b in zip(rest, full[2:]))
    assert len(list(dl)) == 4  # the skip is for one pass only
    with pytest.raises(DatasetError):
        hn.StreamBatches(np.array([1]), bs=2, bptt=2)


def test_text_files_round_trip(tmp_path):
    files = hn.write_text_files(tmp_path / "human_numbers")
    assert [p.name for p in files] == ["train.txt", "valid.txt"]
    assert files[1].read_text().splitlines()[:2] == ["eight thousand one", "eight thousand two"]
    back, gen = hn.read_text_files(tmp_path / "human_numbers"), hn.human_numbers()
    assert back.vocab == gen.vocab and np.array_equal(back.valid, gen.valid) and np.array_equal(back.train, gen.train)
    with pytest.raises(DatasetError, match="train.txt"):
        hn.read_text_files(tmp_path)
