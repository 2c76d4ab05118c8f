"""`lesson7-studio train` progress: one bar for the whole run (steps of every stage), ETA, lr text."""

from lesson7_studio.cli.train_cmd import _Bars
from lesson7_studio.core.events import BatchEnd, EpochEnd, StageStart


def _batch(step, stage="gen", epoch=0, stage_index=0, eta=83.0):
    return BatchEnd(stage=stage, epoch=epoch, step=step, iteration=(step - 1) % 3, n_iter=3, loss=0.05,
                    smooth_loss=0.0412, lr=9.2e-4, total_steps=9, eta_s=eta, elapsed_s=float(step),
                    stage_index=stage_index, n_stages=2)


def test_one_bar_counts_every_stage_with_eta_and_lr(capsys):
    bars = _Bars()
    bars(StageStart("gen", 0, 2, epochs=2, total_steps=9, steps_done=0, stage_steps=6))
    for s in range(1, 7):
        bars(_batch(s, epoch=(s - 1) // 3))
        if s % 3 == 0:
            bars(EpochEnd(stage="gen", epoch=(s - 1) // 3, n_epochs=2, step=s, metrics={"valid_loss": 0.02}))
    first_bar = bars.bar
    bars(StageStart("critic", 1, 2, epochs=1, total_steps=9, steps_done=6, stage_steps=3))
    for s in range(7, 10):
        bars(_batch(s, stage="critic", stage_index=1, eta=0.0 if s == 9 else 5.0))
    assert bars.bar is first_bar and bars.bar.n == 9 and bars.bar.total == 9  # the same bar all along
    bars.close()
    err = capsys.readouterr().err
    assert "== stage 2/2: critic (1 epochs), steps 7-9 of 9" in err
    assert "gen epoch 2/2: valid_loss 0.02" in err
    assert "9/9 step" in err and "lr 9.2e-4" in err and "ETA 0:00" in err
    assert "stage 2/2 critic epoch 1" in err
