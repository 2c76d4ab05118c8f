"""Drive the real app (e.g. under Xvfb): a quick run, a fine-tune and a tiny NoGAN run started from the
Train panel of the demo project, with screenshots of the form, the run (overall progress, ETA, curves),
Paused, the end and the sample grid.

    DISPLAY=:99 python scripts/app_training_shots.py OUTDIR WORK [quick] [finetune] [nogan]

WORK holds the demo project, its runs and the settings (nothing is written to the user's folders).
Errors are printed instead of shown in a dialog, so the script never waits on a click."""
import os, sys, time
from pathlib import Path
out, work = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True); work.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("LESSON7_OFFLINE", "1")
os.environ["LESSON7_DATA_DIR"] = str(work / "data"); os.environ["LESSON7_CONFIG_DIR"] = str(work / "config")
from lesson7_studio.core.project import demo_project, DEMO_DATASET
from lesson7_studio.gui.screenshots import _open_window, _wait
from lesson7_studio.core.events import EpochEnd
project = demo_project(work / "demo")
import lesson7_studio.gui.panels.train.panel as _tp
_tp.show_error = lambda w, exc, context="": print("ERROR", context, repr(exc), flush=True)
app, win = _open_window(project, (1280, 800), work)
ctx = win.ctx
def shot(name):
    p = out / f"{name}.png"; win.grab().save(str(p)); print("wrote", p, flush=True)
train = win.show_panel("train")
_wait(app, lambda: True, settle_ms=800)
epochs = []  # the current run's EpochEnd events (one connection for all runs)
train.control.job_event.connect(lambda ev: epochs.append(ev) if isinstance(ev, EpochEnd) else None)
def pick(recipe):
    train.form.recipe_combo.setCurrentIndex(train.form.recipe_combo.findData(recipe))
    train.form.dataset_combo.setCurrentIndex(max(0, train.form.dataset_combo.findText(DEMO_DATASET)))
    _wait(app, lambda: True, settle_ms=300)
def run(recipe, tag, mid_epoch, gan=False):
    pick(recipe)
    if gan:
        ctx.set_model_choice("unet-lite", {"nf": 16, "blocks": 1})
        train.form.model_chosen("unet-lite", {})
        train.form.size_spin.setValue(64); train.form.bs_spin.setValue(2); train.form.steps_spin.setValue(4)
        train.form.set_stage_epochs(1)
        for r in train.form.stage_rows:
            if r.kind == "gan" and r.epochs.isEnabled(): r.epochs.setValue(3)
    shot(f"{tag}-form")
    epochs.clear()
    train.start()
    _wait(app, lambda: len(epochs) >= mid_epoch, timeout_s=900, settle_ms=800)
    shot(f"{tag}-running")
    if not gan:
        train.pause(); _wait(app, lambda: True, settle_ms=1500); shot(f"{tag}-paused"); train.resume()
    t0 = time.time()
    _wait(app, lambda: not train.is_busy(), timeout_s=900, settle_ms=1500)
    print(tag, "finished", train.last_result.stopped if train.last_result else None, f"{time.time()-t0:.0f}s more", flush=True)
    shot(f"{tag}-end")
    train.tabs.setCurrentIndex(1); _wait(app, lambda: True, settle_ms=800); shot(f"{tag}-samples")
    train.tabs.setCurrentIndex(0)
which = sys.argv[3:] or ["quick", "finetune", "nogan"]
if "quick" in which: run("quick", "quick", 4)
if "finetune" in which: run("finetune", "finetune", 2)
if "nogan" in which: run("superres-gan", "nogan", 2, gan=True)
win.close(); _wait(app, lambda: True, settle_ms=500)
