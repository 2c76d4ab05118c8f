"""--valid-pct rounds as a user expects: about that share, at least one, never all."""

import numpy as np
import pytest

from lesson7_studio.core.datasets import build_pairs, read_dataset_json, valid_count


@pytest.mark.parametrize("n,pct,expected", [(16, 0.1, 2), (5, 0.1, 1), (10, 0.25, 3), (20, 0.1, 2), (2, 0.9, 1),
                                            (1, 0.5, 0), (16, 0.0, 0), (100, 0.1, 10), (3, 0.01, 1)])
def test_valid_count_rounds_half_up_with_at_least_one(n, pct, expected):
    assert valid_count(n, pct) == expected


def test_sixteen_photos_at_ten_percent_give_two_and_the_cli_says_so(tmp_path, capsys):
    from PIL import Image

    from lesson7_studio.cli import main

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(src / f"p{i:02d}.png")
    s = build_pairs(src, tmp_path / "ds", "superres-x2", seed=0, valid_pct=0.1, workers=1)
    assert (s.train, s.valid) == (14, 2)
    meta = read_dataset_json(tmp_path / "ds")
    assert len(meta["valid"]) == 2 and set(meta["valid"]).isdisjoint(meta["train"])
    # the same seed picks the same pairs; another seed may pick others, but as many
    again = build_pairs(src, tmp_path / "ds2", "superres-x2", seed=0, valid_pct=0.1, workers=1)
    assert read_dataset_json(tmp_path / "ds2")["valid"] == meta["valid"] and again.valid == 2
    assert build_pairs(src, tmp_path / "ds3", "superres-x2", seed=5, valid_pct=0.1, workers=1).valid == 2
    assert main(["crappify", str(src), str(tmp_path / "ds4"), "--recipe", "superres-x2", "--valid-pct", "0.1",
                 "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "train 14, valid 2 (12 % of 16 pairs; --valid-pct 0.1)" in out
