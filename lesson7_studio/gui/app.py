"""Starting the desktop app: QApplication, style, context, main window, first-start demo."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lesson7_studio.gui import qtcompat  # noqa: F401
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QStyleFactory

from lesson7_studio.core.project import Project, demo_photos, demo_project, resources_dir

from .context import AppContext, Settings


def stylesheet() -> str:
    """resources/style.qss with ``@ICONS@`` replaced by the icons folder."""
    path = resources_dir() / "style.qss"
    if not path.is_file():
        return ""
    icons = (resources_dir() / "icons").as_posix()
    return path.read_text(encoding="utf-8").replace("@ICONS@", icons)


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (reused if one exists), with the app's name, style and icon."""
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName("Lesson7 Studio")
    app.setOrganizationName("lesson7-studio")
    app.setApplicationDisplayName("Lesson7 Studio")
    app.setDesktopFileName("io.github.lesson7studio.Lesson7Studio")
    if "Fusion" in QStyleFactory.keys():
        app.setStyle("Fusion")
    app.setStyleSheet(stylesheet())
    from .main_window import icon

    app.setWindowIcon(icon("lesson7-studio.svg"))
    return app


def choose_project(settings: Settings, project_dir: str | os.PathLike[str] | None, demo: bool) -> tuple[Project, bool]:
    """(project, is_demo): the one asked for, else the last one used, else the demo project."""
    if project_dir is not None:
        return Project(project_dir).create(), False
    last = settings.value("project/last", "")
    if not demo and last and Project.is_project(last):
        return Project(last), False
    return demo_project(build=False), True


def demo_pair_image(project: Project) -> Path | None:
    """A crappified validation image of the demo dataset (Compare opens it with its original)."""
    import json

    from lesson7_studio.core.project import DEMO_DATASET

    ds = project.datasets_dir / DEMO_DATASET
    try:
        meta = json.loads((ds / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for rel in list(meta.get("valid", [])) + list(meta.get("train", [])):
        stem = Path(rel).with_suffix("").as_posix()
        found = sorted((ds / "lr").glob(f"{stem}.*"))
        if found:
            return found[0]
    return None


def prepare_demo(window) -> None:
    """First start: the demo photos in Data, the demo dataset (built in the background if
    needed) in Train, and a crappified sample beside its restoration in Compare."""
    from lesson7_studio.core.project import DEMO_DATASET

    ctx = window.ctx
    project = ctx.project
    window.panel("data").set_folder(demo_photos(project))

    def show_pair() -> None:
        img = demo_pair_image(project)
        if img is not None:
            window.open_files([img])

    if (project.datasets_dir / DEMO_DATASET / "dataset.json").is_file():
        show_pair()
        return

    def build(on_event=None, cancel=None):
        return demo_project(project.root, build=True, on_event=on_event, cancel=cancel)

    worker = ctx.start_worker(build)
    ctx.status_message.emit("Preparing the demo dataset…")

    def built(_result) -> None:
        ctx.datasets_changed.emit()
        ctx.status_message.emit("Demo dataset ready: train it with the quick recipe in the Train panel.")
        show_pair()

    worker.finished.connect(built)
    worker.failed.connect(lambda exc: ctx.status_message.emit(f"The demo dataset could not be built: {exc}"))


def run_app(
    files: list[str] | None = None,
    project_dir: str | os.PathLike[str] | None = None,
    *,
    demo: bool = False,
    settings_path: str | os.PathLike[str] | None = None,
) -> int:
    """Open the main window (on ``files`` in Compare, if given) and run the event loop."""
    app = create_application()
    from .main_window import MainWindow

    settings = Settings(settings_path)
    project, is_demo = choose_project(settings, project_dir, demo)
    ctx = AppContext(project, settings)
    settings.add_recent("recent/projects", project.root)
    settings.set_value("project/last", str(project.root))
    window = MainWindow(ctx)
    window.show()
    paths = [Path(f) for f in files or []]
    if paths:
        window.open_files(paths)
    elif is_demo:
        prepare_demo(window)
    # a debounce timer may start a worker after the window closed: stop them all before exit
    app.aboutToQuit.connect(lambda: ctx.cancel_all(wait_ms=30000))
    return app.exec()
