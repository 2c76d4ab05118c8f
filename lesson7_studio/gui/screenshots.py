"""Render every panel with demo content: ``python -m lesson7_studio.gui.screenshots OUTDIR``.

Writes OUTDIR/<panel>.png for data, model, train, compare, inspect and restore (plus
train-samples.png, compare-models.png with three models, data-old-photo.png, data-building.png
and about.png). The demo project, two small training runs (a quick U-Net
run and a tiny NoGAN run for the Inspect panel) and the settings live in ``--work`` (a
temporary folder unless given; reuse one to skip the training the second time). Nothing is
written to the user's folders. Works offscreen (QT_QPA_PLATFORM=offscreen) or under Xvfb.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PANEL_ORDER = ("data", "model", "train", "compare", "inspect", "restore")


def _train_demo_runs(project, log) -> tuple[Path, Path]:
    """A quick run and a tiny NoGAN run on the demo dataset (skipped when already there)."""
    from lesson7_studio.core.project import DEMO_DATASET
    from lesson7_studio.core.train import apply_overrides, get_recipe, train

    data = project.datasets_dir / DEMO_DATASET
    quick = project.runs_dir / "quick-demo"
    if not (quick / "model.safetensors").is_file():
        log("training the quick demo run…")
        cfg = apply_overrides(get_recipe("quick"), data=str(data), out=str(quick), epochs=40, size=96,
                              batch_size=1, device="cpu", preview_samples=2)
        train(cfg)
    gan = project.runs_dir / "nogan-demo"
    if not (gan / "model.safetensors").is_file():
        log("training the tiny NoGAN demo run…")
        cfg = apply_overrides(
            get_recipe("superres-gan"), data=str(data), out=str(gan), epochs=1, size=128, batch_size=2,
            arch="unet-lite", arch_options={"nf": 16, "blocks": 1}, critic_options={"nf": 16},
            pretrained=False, device="cpu", preview_samples=2,
        )
        for st in cfg.stages:
            if st.kind == "gan":
                st.epochs = 4
        train(cfg)
    return quick, gan


def _wait(app, until, timeout_s: float = 60.0, settle_ms: int = 300) -> bool:
    """Process events until ``until()`` is true (then a little longer for repaints)."""
    from PySide6.QtCore import QEventLoop, QTimer

    t0 = time.monotonic()
    ok = False
    while time.monotonic() - t0 < timeout_s:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if until():
            ok = True
            break
        time.sleep(0.02)
    loop = QEventLoop()
    QTimer.singleShot(settle_ms, loop.quit)
    loop.exec()
    return ok


def render(outdir: Path, size: tuple[int, int], work: Path, log=print) -> list[Path]:
    """Render the panels into ``outdir``; returns the files written."""
    os.environ.setdefault("LESSON7_OFFLINE", "1")
    os.environ["LESSON7_DATA_DIR"] = str(work / "data")
    os.environ["LESSON7_CONFIG_DIR"] = str(work / "config")
    outdir.mkdir(parents=True, exist_ok=True)

    from lesson7_studio.core.project import DEMO_DATASET, demo_photos, demo_project

    log("preparing the demo project…")
    project = demo_project(work / "demo")
    quick_run, gan_run = _train_demo_runs(project, log)

    from PySide6.QtCore import Qt

    from .app import create_application
    from .context import AppContext, Settings
    from .main_window import MainWindow

    app = create_application()
    settings_file = work / "config" / f"screenshots-{size[0]}x{size[1]}.ini"
    if settings_file.exists():
        settings_file.unlink()
    ctx = AppContext(project, Settings(settings_file), device="cpu")
    ctx.set_model_choice("unet-lite", {"nf": 32})
    win = MainWindow(ctx)
    win.resize(*size)
    win.show()
    _wait(app, lambda: True, settle_ms=500)

    def idle() -> bool:
        return not ctx.running_workers()

    written: list[Path] = []

    def shot(name: str, widget=None) -> None:
        path = outdir / f"{name}.png"
        (widget or win).grab().save(str(path))
        written.append(path)
        log(f"wrote {path}")

    # Data: the demo photos, a selected photo and its crappified preview
    data = win.show_panel("data")
    photos = demo_photos(project)
    data.set_folder(photos)
    _wait(app, lambda: data.preview_count > 0 and idle() and data.grid.thumb_model.loaded_count() >= 1)
    data.grid.select_path(sorted(photos.glob("*.png"))[-1])
    before = data.preview_count
    _wait(app, lambda: data.preview_count > before and idle())
    shot("data")

    # Model: a lesson U-Net with the pretrained-weights status
    model = win.show_panel("model")
    model.select_model("unet-resnet34")
    model.form.set_values({"pretrained": True})
    model._options_changed()
    _wait(app, lambda: model.last_stats is not None and model.last_stats["info"].name == "unet-resnet34"
          and idle(), settle_ms=600)
    shot("model")

    # Train: the quick demo run reopened with its curves, then its samples
    train = win.show_panel("train")
    train.refresh_runs()
    train.open_run(quick_run)
    _wait(app, lambda: idle(), settle_ms=600)
    shot("train")
    train.tabs.setCurrentIndex(1)
    _wait(app, lambda: True, settle_ms=300)
    shot("train-samples")
    train.tabs.setCurrentIndex(0)

    # Compare: a crappified validation image of the demo dataset beside its restoration
    compare = win.show_panel("compare")
    ds = project.datasets_dir / DEMO_DATASET
    lr_files = sorted((ds / "lr").glob("*"))
    if lr_files:
        compare.open_images([lr_files[0]])
    _wait(app, lambda: idle() and not compare.is_busy(), timeout_s=120, settle_ms=800)
    shot("compare")
    # ... and with three models: the starter and the two demo runs' models
    compare.refresh_models()
    models = [compare.model_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(compare.model_list.count())]
    compare.set_models(models[:3])
    compare.restore_now()
    _wait(app, lambda: idle() and not compare.is_busy(), timeout_s=240, settle_ms=800)
    shot("compare-models")

    # Inspect: the tiny NoGAN run
    inspect = win.show_panel("inspect")
    inspect.open_run(gan_run)
    _wait(app, lambda: idle() and not inspect.is_busy(), timeout_s=60, settle_ms=800)
    shot("inspect")

    # Restore: the demo photos queued, the first one previewed
    restore = win.show_panel("restore")
    restore.add_inputs([photos])
    restore.set_output(work / "restored")
    _wait(app, lambda: idle() and not restore.is_scanning(), settle_ms=300)
    restore.preview_first()
    _wait(app, lambda: idle() and not restore.is_busy(), timeout_s=120, settle_ms=800)
    shot("restore")

    # Data again: the old-photo preset (the widest recipe), then a dataset build under way
    data = win.show_panel("data")
    data.recipe_editor.set_preset("old-photo")
    _wait(app, idle, settle_ms=600)
    shot("data-old-photo")
    data.name_edit.setText("old-photo-demo")
    data.build_dataset()
    _wait(app, lambda: data.progress.value() > 0 or not data.is_busy(), timeout_s=60, settle_ms=150)
    shot("data-building")
    _wait(app, lambda: not data.is_busy(), timeout_s=120, settle_ms=100)
    if data.summary_dialog is not None:
        data.summary_dialog.close()

    # About
    box = win.about_dialog()
    box.show()
    _wait(app, lambda: True, settle_ms=300)
    shot("about", box)
    box.close()

    win._force_close = True
    win.close()
    return written


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x800, got {text!r}") from None
    return w, h


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lesson7_studio.gui.screenshots", description=__doc__.split("\n")[0])
    p.add_argument("outdir", type=Path)
    p.add_argument("--size", type=parse_size, default=(1280, 800), help="window size, e.g. 1280x800")
    p.add_argument("--work", type=Path, help="folder for the demo project and runs (kept; reuse it)")
    args = p.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="lesson7-shots-"))
    work.mkdir(parents=True, exist_ok=True)
    render(args.outdir, args.size, work, log=lambda m: print(m, file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
