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


class _Shots:
    """The window on the demo project, and one method a panel that grabs it into ``outdir``."""

    def __init__(self, app, win, project, outdir: Path, work: Path, log) -> None:
        self.app, self.win, self.ctx, self.project = app, win, win.ctx, project
        self.outdir, self.work, self.log = outdir, work, log
        self.written: list[Path] = []

    def idle(self) -> bool:
        return not self.ctx.running_workers()

    def wait(self, until, timeout_s: float = 60.0, settle_ms: int = 300) -> bool:
        return _wait(self.app, until, timeout_s=timeout_s, settle_ms=settle_ms)

    def shot(self, name: str, widget=None) -> None:
        path = self.outdir / f"{name}.png"
        (widget or self.win).grab().save(str(path))
        self.written.append(path)
        self.log(f"wrote {path}")

    def data(self) -> None:
        """The demo photos, a selected photo and its crappified preview."""
        from lesson7_studio.core.project import demo_photos

        data = self.win.show_panel("data")
        self.photos = demo_photos(self.project)
        data.set_folder(self.photos)
        self.wait(lambda: data.preview_count > 0 and self.idle() and data.grid.thumb_model.loaded_count() >= 1)
        data.grid.select_path(sorted(self.photos.glob("*.png"))[-1])
        before = data.preview_count
        self.wait(lambda: data.preview_count > before and self.idle())
        self.shot("data")

    def model(self) -> None:
        """A lesson U-Net with the pretrained-weights status."""
        model = self.win.show_panel("model")
        model.select_model("unet-resnet34")
        model.form.set_values({"pretrained": True})
        model._options_changed()
        self.wait(lambda: model.last_stats is not None and model.last_stats.name == "unet-resnet34"
                  and self.idle(), settle_ms=600)
        self.shot("model")

    def train(self, quick_run: Path) -> None:
        """The quick demo run reopened with its curves, then its samples."""
        train = self.win.show_panel("train")
        train.refresh_runs()
        train.open_run(quick_run)
        self.wait(self.idle, settle_ms=600)
        self.shot("train")
        train.tabs.setCurrentIndex(1)
        self.wait(lambda: True, settle_ms=300)
        self.shot("train-samples")
        train.tabs.setCurrentIndex(0)

    def compare(self) -> None:
        """A crappified validation image of the demo dataset beside its restoration, then the
        starter and the two demo runs' models."""
        from PySide6.QtCore import Qt

        from lesson7_studio.core.project import DEMO_DATASET

        compare = self.win.show_panel("compare")
        lr_files = sorted((self.project.datasets_dir / DEMO_DATASET / "lr").glob("*"))
        if lr_files:
            compare.open_images([lr_files[0]])
        self.wait(lambda: self.idle() and not compare.is_busy(), timeout_s=120, settle_ms=800)
        self.shot("compare")
        compare.refresh_models()
        items = [compare.model_list.item(i) for i in range(compare.model_list.count())]
        compare.set_models([it.data(Qt.ItemDataRole.UserRole) for it in items][:3])
        compare.restore_now()
        self.wait(lambda: self.idle() and not compare.is_busy(), timeout_s=240, settle_ms=800)
        self.shot("compare-models")

    def inspect(self, gan_run: Path) -> None:
        """The tiny NoGAN run."""
        inspect = self.win.show_panel("inspect")
        inspect.open_run(gan_run)
        self.wait(lambda: self.idle() and not inspect.is_busy(), timeout_s=60, settle_ms=800)
        self.shot("inspect")

    def restore(self) -> None:
        """The demo photos queued, the first one previewed."""
        restore = self.win.show_panel("restore")
        restore.add_inputs([self.photos])
        restore.set_output(self.work / "restored")
        self.wait(lambda: self.idle() and not restore.is_scanning(), settle_ms=300)
        restore.preview_first()
        self.wait(lambda: self.idle() and not restore.is_busy(), timeout_s=120, settle_ms=800)
        self.shot("restore")

    def data_building(self) -> None:
        """The old-photo preset (the widest recipe), then a dataset build under way."""
        data = self.win.show_panel("data")
        data.recipe_editor.set_preset("old-photo")
        self.wait(self.idle, settle_ms=600)
        self.shot("data-old-photo")
        data.name_edit.setText("old-photo-demo")
        data.build_dataset()
        self.wait(lambda: data.progress.value() > 0 or not data.is_busy(), timeout_s=60, settle_ms=150)
        self.shot("data-building")
        self.wait(lambda: not data.is_busy(), timeout_s=120, settle_ms=100)
        if data.summary_dialog is not None:
            data.summary_dialog.close()

    def about(self) -> None:
        box = self.win.about_dialog()
        box.show()
        self.wait(lambda: True, settle_ms=300)
        self.shot("about", box)
        box.close()

    def close(self) -> None:
        """Close the window (it waits for its workers without blocking) and wait for that."""
        closed = []
        self.win.closed.connect(lambda: closed.append(True))
        self.win._force_close = True
        self.win.close()
        self.wait(lambda: bool(closed), timeout_s=120, settle_ms=0)


def _open_window(project, size: tuple[int, int], work: Path):
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
    return app, win


def render(outdir: Path, size: tuple[int, int], work: Path, log=print) -> list[Path]:
    """Render the panels into ``outdir``; returns the files written."""
    os.environ.setdefault("LESSON7_OFFLINE", "1")
    os.environ["LESSON7_DATA_DIR"] = str(work / "data")
    os.environ["LESSON7_CONFIG_DIR"] = str(work / "config")
    outdir.mkdir(parents=True, exist_ok=True)

    from lesson7_studio.core.project import demo_project

    log("preparing the demo project…")
    project = demo_project(work / "demo")
    quick_run, gan_run = _train_demo_runs(project, log)
    app, win = _open_window(project, size, work)
    shots = _Shots(app, win, project, outdir, work, log)
    shots.data()
    shots.model()
    shots.train(quick_run)
    shots.compare()
    shots.inspect(gan_run)
    shots.restore()
    shots.data_building()
    shots.about()
    shots.close()
    return shots.written


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
