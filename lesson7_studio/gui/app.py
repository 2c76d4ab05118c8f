"""Starting the desktop app: display check, QApplication, style, context, main window, demo.

The window comes first: ``run_app`` shows it with the panels that need no PyTorch, then a
background thread imports torch (2 s or more) and detects the device, and the other panels
(busy pages until then) are built when it is done.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QtMsgType, QTimer, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QStyleFactory

from lesson7_studio.core.errors import Lesson7Error
from lesson7_studio.core.project import Project, demo_photos, demo_project, resources_dir

from .context import AppContext, Settings
from .errors import install_excepthook
from .widgets.wheel import install_wheel_guard

# panels that need no torch to be built (the rest import it, or read the device, when built):
# shown at once; the others are busy pages until the background start-up is done
LIGHT_PANELS = ("data", "compare", "inspect")
# what the background start-up imports (the core modules bring torch; torchvision comes with
# the model registry): the GUI itself never imports torch
STARTUP_MODULES = ("lesson7_studio.core.models", "lesson7_studio.core.train", "lesson7_studio.core.restore")
HOW_TO_RUN = ("run it in a desktop session, or set QT_QPA_PLATFORM=offscreen (or start it under "
              "Xvfb) to render without a screen, e.g. for screenshots")
DISPLAY_PACKAGES = "libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libegl1 libgl1 libfontconfig1"


class NoDisplayError(Lesson7Error):
    """There is no screen to open the window on, or Qt's display plugin cannot start."""


def check_display(environ: os._Environ | dict[str, str] | None = None, platform: str | None = None) -> None:
    """Raise NoDisplayError when Qt would find no display (Linux/BSD with neither DISPLAY nor
    WAYLAND_DISPLAY and no QT_QPA_PLATFORM chosen): Qt would abort with its plugin text."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return  # Windows and macOS always have their own platform plugin
    qpa = env.get("QT_QPA_PLATFORM", "").strip().lower()
    if qpa and not qpa.startswith(("xcb", "wayland")):
        return  # offscreen, minimal, vnc, eglfs ... need no display server
    has_x = bool(env.get("DISPLAY", "").strip())
    has_wayland = bool(env.get("WAYLAND_DISPLAY", "").strip())
    wanted_x = qpa.startswith("xcb")
    wanted_wayland = qpa.startswith("wayland")
    if (wanted_x and has_x) or (wanted_wayland and has_wayland) or (not qpa and (has_x or has_wayland)):
        return
    if wanted_x:
        which = "QT_QPA_PLATFORM asks for X11 but DISPLAY is not set"
    elif wanted_wayland:
        which = "QT_QPA_PLATFORM asks for Wayland but WAYLAND_DISPLAY is not set"
    else:
        which = "neither DISPLAY nor WAYLAND_DISPLAY is set"
    raise NoDisplayError(f"No display to open the window on ({which}): {HOW_TO_RUN}.")


class _PlatformWatch:
    """Qt messages while QApplication starts: a fatal one (no platform plugin could start) is
    reported as one line, with the library Qt named, and the process exits with status 1."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def __call__(self, kind, _context, message: str) -> None:
        if kind == QtMsgType.QtFatalMsg:
            # the first note says why ("could not connect to display :1", "... libxcb-cursor0
            # is needed ..."); Qt adds the libxcb-cursor0 line to every xcb failure
            detail = f" ({self.notes[0].rstrip('.')})" if self.notes else ""
            sys.stderr.write(
                f"error: Qt could not start its display plugin{detail}: install the display libraries "
                f"the README lists (Debian/Ubuntu: {DISPLAY_PACKAGES}), or {HOW_TO_RUN}.\n")
            sys.stderr.flush()
            os._exit(1)  # Qt would abort() after this handler (exit status 134)
        self.notes.append(message.strip())


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
        check_display()
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        qInstallMessageHandler(_PlatformWatch())
        try:
            app = QApplication(list(argv) if argv is not None else sys.argv[:1])
        finally:
            qInstallMessageHandler(None)
    install_wheel_guard(app)
    app.setApplicationName("Lesson7 Studio")
    app.setOrganizationName("lesson7-studio")
    app.setApplicationDisplayName("Lesson7 Studio")
    app.setDesktopFileName("io.github.lesson7studio.Lesson7Studio")
    if "Fusion" in QStyleFactory.keys():
        app.setStyle("Fusion")
    app.setStyleSheet(stylesheet())
    from .icons import icon

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
    window = MainWindow(ctx, deferred=deferred_panels())
    window.show()
    # torch's import would compete with the first paint for the interpreter: start it after
    after_first_paint(window, lambda: start_background_startup(window))
    paths = [Path(f) for f in files or []]
    if paths:
        window.open_files(paths)
    elif is_demo:
        prepare_demo(window)
    # a debounce timer may start a worker after the window closed: stop them all before exit
    app.aboutToQuit.connect(lambda: ctx.cancel_all(wait_ms=30000))
    hook = install_excepthook(lambda: window if window.isVisible() else None)
    try:
        return app.exec()
    finally:
        hook.restore()


class _FirstPaint(QObject):
    def __init__(self, widget, callback, fallback_ms: int) -> None:
        super().__init__(widget)
        self._callback = callback
        self._fired = False
        widget.installEventFilter(self)
        QTimer.singleShot(fallback_ms, self, self._fire)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt name
        if event.type() == QEvent.Type.Paint and not self._fired:
            QTimer.singleShot(0, self, self._fire)  # once the paint is on screen
        return False

    def _fire(self) -> None:
        if self._fired:
            return
        self._fired = True
        self.parent().removeEventFilter(self)
        self._callback()


def after_first_paint(widget, callback, fallback_ms: int = 1000) -> None:
    """Call ``callback()`` once, right after ``widget`` is first painted (or after
    ``fallback_ms`` if it is not painted, e.g. started minimised)."""
    _FirstPaint(widget, callback, fallback_ms)


def deferred_panels() -> tuple[str, ...]:
    """The panels built after the background start-up: all but LIGHT_PANELS."""
    from .main_window import PANELS

    return tuple(key for key, *_ in PANELS if key not in LIGHT_PANELS)


def warm_up(on_event=None, cancel=None) -> str:
    """Import the core modules the panels need (and torch with them); return the device to use.
    Runs in a worker thread while the window is already on screen."""
    import importlib

    from lesson7_studio.core.events import check

    for name in STARTUP_MODULES:
        check(cancel)
        importlib.import_module(name)
    from lesson7_studio.core import models

    models.names()  # registers the model families (imports torchvision)
    from .context import detect_device

    return detect_device()


def start_background_startup(window):
    """Run :func:`warm_up` in a worker; then set the device and build the deferred panels.
    Returns the worker (its ``done`` signal tells when the window is complete)."""
    ctx = window.ctx
    # (the busy pages and the device label "…" say that PyTorch is loading; the status bar
    # stays free for the demo's messages)
    worker = ctx.start_worker(warm_up, name="startup")

    def ready(device: str) -> None:
        if worker.token.cancelled:  # the window is closing: build nothing more
            return
        if not ctx.device_known:
            ctx.device = device
        window.update_device_label()
        window.build_deferred_panels()

    def failed(exc: BaseException) -> None:
        from .errors import show_error

        if worker.token.cancelled:
            return
        window.build_deferred_panels()  # they import what failed and say so themselves
        show_error(window, exc, context="PyTorch could not be started")

    worker.finished.connect(ready)
    worker.failed.connect(failed)
    window.startup_worker = worker
    return worker
