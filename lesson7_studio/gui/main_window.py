"""The main window: a sidebar of panels, menus, a status bar showing project and device."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from lesson7_studio.core.project import Project, data_dir

from . import about, projects
from .context import AppContext
from .icons import icon
from .widgets.common import BusyPage

# (key, sidebar label, icon file, tooltip)
PANELS = [
    ("data", "Data", "data.svg", "Choose photos, tune the crappifier, build a paired dataset"),
    ("model", "Model", "model.svg", "Pick an architecture and its options"),
    ("train", "Train", "train.svg", "Train with live curves and sample predictions"),
    ("compare", "Compare", "compare.svg", "Restore an image and compare before / after"),
    ("inspect", "Inspect", "inspect.svg", "Scrub through a GAN run's epochs and critic scores"),
    ("restore", "Restore", "restore.svg", "Restore a whole folder of photos"),
    ("lessons", "Lessons", "lessons.svg", "The lesson's classifiers (MNIST ResNet / DenseNet) and RNNs (human numbers)"),
]


# key -> (module under gui/panels, class): imported only when that panel is built, so the
# window can show before the panels that import torch are loaded
PANEL_CLASSES = {
    "data": ("data", "DataPanel"),
    "model": ("model", "ModelPanel"),
    "train": ("train", "TrainPanel"),
    "compare": ("compare", "ComparePanel"),
    "inspect": ("gan", "GanPanel"),
    "restore": ("restore", "RestorePanel"),
    "lessons": ("lessons", "LessonsPanel"),
}


def panel_class(key: str) -> type:
    import importlib

    module, name = PANEL_CLASSES[key]
    return getattr(importlib.import_module(f"{__package__}.panels.{module}"), name)


class MainWindow(QMainWindow):
    """Sidebar + stacked panels. ``panels`` maps key ("data", ... "restore") to the widget."""

    closed = Signal()  # the window has closed for good (after its workers ended)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, *, deferred: tuple[str, ...] = ()) -> None:
        """``deferred``: panels shown as a busy page until :meth:`build_deferred_panels` (the app
        builds the ones that need torch once a background thread has imported it)."""
        super().__init__(parent)
        self.ctx = ctx
        self.setObjectName("mainWindow")
        self.setWindowIcon(icon("lesson7-studio.svg"))
        self.setMinimumSize(900, 560)
        self._force_close = False
        self._stopping = False  # closing: hidden, waiting for the cancelled workers to end

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setIconSize(QSize(28, 28))
        self.sidebar.setFixedWidth(96)
        self.sidebar.setViewMode(QListWidget.ViewMode.IconMode)
        self.sidebar.setFlow(QListWidget.Flow.TopToBottom)
        self.sidebar.setMovement(QListWidget.Movement.Static)
        self.sidebar.setWrapping(False)
        self.sidebar.setSpacing(2)
        self.sidebar.setUniformItemSizes(True)
        self.sidebar.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.stack = QStackedWidget()
        self.stack.setObjectName("panelStack")

        self.panels: dict[str, QWidget] = {}  # the panels built so far
        self._deferred = {k for k in deferred if k in {key for key, *_ in PANELS}}
        for key, label, icon_file, tip in PANELS:
            if key in self._deferred:
                self.stack.addWidget(BusyPage(f"Loading {label}\u2026 (PyTorch starts in the background)"))
            else:
                self.stack.addWidget(self._build_panel(key))
            item = QListWidgetItem(icon(icon_file), label)
            item.setToolTip(tip)
            item.setSizeHint(QSize(88, 64))
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom)
            item.setData(Qt.ItemDataRole.UserRole, key)
            self.sidebar.addItem(item)
        self.sidebar.currentRowChanged.connect(self._row_changed)

        central = QWidget()
        lay = QHBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.sidebar)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self._build_menus()
        self._build_status_bar()
        ctx.project_changed.connect(self._project_changed)
        ctx.status_message.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        self._project_changed(ctx.project)
        self._restore_state()

    # ------------------------------------------------------------------ building
    def _build_panel(self, key: str) -> QWidget:
        panel = panel_class(key)(self.ctx)
        panel.setObjectName(f"{key}Panel")
        self.panels[key] = panel
        return panel

    def build_deferred_panels(self) -> None:
        """Build the panels still shown as busy pages, in their places in the stack."""
        for key in [k for k, *_ in PANELS if k in self._deferred]:
            self._build_deferred(key)

    def _build_deferred(self, key: str) -> QWidget:
        self._deferred.discard(key)
        index = [k for k, *_ in PANELS].index(key)
        current = self.stack.currentIndex() == index
        placeholder = self.stack.widget(index)
        panel = self._build_panel(key)
        self.stack.insertWidget(index, panel)
        self.stack.removeWidget(placeholder)
        placeholder.deleteLater()
        if current:
            self.stack.setCurrentIndex(index)
            on_shown = getattr(panel, "on_shown", None)
            if on_shown is not None:
                on_shown()
        return panel

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        a = file_menu.addAction("&New Project…", self.new_project)
        a.setShortcut(QKeySequence.StandardKey.New)
        a = file_menu.addAction("&Open Project…", self.open_project)
        a.setShortcut(QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        file_menu.addAction("Open &Image to Compare…", self._open_images)
        file_menu.addAction("Show Project &Folder", self._show_project_folder)
        file_menu.addSeparator()
        a = file_menu.addAction("&Quit", self.close)
        a.setShortcut(QKeySequence.StandardKey.Quit)
        a.setMenuRole(QAction.MenuRole.QuitRole)

        view = mb.addMenu("&View")
        self.panel_actions = QActionGroup(self)
        for i, (key, label, icon_file, _tip) in enumerate(PANELS):
            act = view.addAction(icon(icon_file), label)
            act.setCheckable(True)
            act.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            act.triggered.connect(lambda _c=False, k=key: self.show_panel(k))
            act.setData(key)
            self.panel_actions.addAction(act)
        view.addSeparator()
        self.sidebar_action = view.addAction("Show &Sidebar")
        self.sidebar_action.setCheckable(True)
        self.sidebar_action.setChecked(True)
        self.sidebar_action.toggled.connect(self.sidebar.setVisible)

        help_menu = mb.addMenu("&Help")
        a = help_menu.addAction("&About Lesson7 Studio", self.show_about)
        a.setMenuRole(QAction.MenuRole.AboutRole)
        help_menu.addAction("Open &Data Folder", lambda: self._open_folder(data_dir()))

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.project_label = QLabel()
        self.project_label.setObjectName("statusProject")
        self.device_label = QLabel()
        self.device_label.setObjectName("statusDevice")
        sb.addPermanentWidget(self.project_label)
        sb.addPermanentWidget(self.device_label)
        self.update_device_label()

    def update_device_label(self) -> None:
        self.device_label.setText(about.device_text(self.ctx))

    # ------------------------------------------------------------------ panels
    def panel(self, name: str) -> QWidget:
        key = name.lower()
        if key in self._deferred:  # asked for before the background start-up finished
            return self._build_deferred(key)
        return self.panels[key]

    def current_panel_name(self) -> str:
        return PANELS[self.stack.currentIndex()][0]

    def show_panel(self, name: str) -> QWidget:
        """Switch to panel ``name`` ("data", "model", "train", "compare", "inspect", "restore")."""
        keys = [k for k, *_ in PANELS]
        key = name.lower()
        if key == "gan":
            key = "inspect"
        self.sidebar.setCurrentRow(keys.index(key))
        return self.panel(key)

    def _row_changed(self, row: int) -> None:
        if row < 0:
            return
        self.stack.setCurrentIndex(row)
        key, label, *_ = PANELS[row]
        for act in self.panel_actions.actions():
            if act.data() == key:
                act.setChecked(True)
        self.setWindowTitle(f"{label} — {self.ctx.project.name} — Lesson7 Studio")
        self.ctx.settings.set_value("window/panel", key)
        on_shown = getattr(self.panels.get(key), "on_shown", None)  # a deferred one: when built
        if on_shown is not None:
            on_shown()

    def open_files(self, paths: list[str | Path]) -> None:
        """Open image files in the Compare panel."""
        if not paths:
            return
        compare = self.show_panel("compare")
        compare.open_images([Path(p) for p in paths])

    # ------------------------------------------------------------------ project
    def _project_changed(self, project: Project) -> None:
        self.project_label.setText(f"Project: {project.name}")
        self.project_label.setToolTip(str(project.root))
        row = max(self.sidebar.currentRow(), 0)
        self.setWindowTitle(f"{PANELS[row][1]} — {project.name} — Lesson7 Studio")

    def _busy_panels(self) -> list[str]:
        return [k for k, p in self.panels.items() if getattr(p, "is_busy", lambda: False)()]

    def new_project(self) -> None:
        projects.new_project(self)

    def open_project(self) -> None:
        projects.open_project(self)

    def _set_project(self, folder: Path, new: bool) -> None:
        projects.set_project(self, folder, new)

    def _fill_recent(self) -> None:
        projects.fill_recent_menu(self)

    def _open_images(self) -> None:
        start = self.ctx.settings.value("dialogs/image_dir", str(Path.home()))
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Open images",
            start,
            "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp);;All files (*)",
        )
        if files:
            self.ctx.settings.set_value("dialogs/image_dir", str(Path(files[0]).parent))
            self.open_files(files)

    def _show_project_folder(self) -> None:
        self._open_folder(self.ctx.project.root)

    @staticmethod
    def _open_folder(path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    # ------------------------------------------------------------------ about
    def about_text(self) -> str:
        """The About dialog's HTML: versions, device, where files go."""
        return about.about_text(self.ctx)

    def show_about(self) -> None:
        self.about_dialog().exec()

    def about_dialog(self) -> QMessageBox:
        return about.about_dialog(self, self.ctx)

    # ------------------------------------------------------------------ state
    def _restore_state(self) -> None:
        s = self.ctx.settings
        geo = s.value("window/geometry", QByteArray())
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        else:
            self.resize(1280, 800)
        state = s.value("window/state", QByteArray())
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        self.sidebar_action.setChecked(s.value("window/sidebar", True))
        key = s.value("window/panel", "data")
        self.show_panel(key if key in self.panels else "data")

    def save_state(self) -> None:
        s = self.ctx.settings
        s.set_value("window/geometry", self.saveGeometry())
        s.set_value("window/state", self.saveState())
        s.set_value("window/sidebar", self.sidebar_action.isChecked())
        s.set_value("window/panel", self.current_panel_name())
        for p in self.panels.values():
            save = getattr(p, "save_settings", None)
            if save is not None:
                save()
        s.sync()

    def confirm_quit(self, busy: list[str]) -> bool:
        """Ask whether to quit while ``busy`` panels work (tests replace this)."""
        answer = QMessageBox.question(
            self,
            "Quit while work is running?",
            f"{', '.join(b.title() for b in busy)}: work is still running.\n\n"
            "Quit anyway? Training stops after the current batch and keeps a checkpoint "
            "you can resume from the Train panel.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt name
        """Never blocks: with work running the window hides, the workers are cancelled, and
        the window closes (and the app quits) when the last one has ended."""
        if self._stopping:  # hidden already: close once the workers have ended
            if self.ctx.running_workers():
                event.ignore()
                return
            self._finish_close(event)
            return
        busy = self._busy_panels()
        if busy and not self._force_close and not self.confirm_quit(busy):
            event.ignore()
            return
        self.save_state()
        if not self.ctx.running_workers():
            self._finish_close(event)
            return
        self._stopping = True
        self.ctx.shutting_down = True  # a worker a timer starts from now on starts cancelled
        self.ctx.workers_idle.connect(self._workers_ended)
        self.hide()
        self.ctx.cancel_running()
        event.ignore()

    def _workers_ended(self) -> None:
        QTimer.singleShot(0, self, self._close_if_idle)  # after the other slots of the last `done`

    def _close_if_idle(self) -> None:
        if not self._stopping:
            return
        if self.ctx.running_workers():  # one more started meanwhile: workers_idle comes again
            self.ctx.cancel_running()
            return
        self.close()

    def _finish_close(self, event: QCloseEvent) -> None:
        for p in self.panels.values():  # no worker runs: their waits return at once
            shutdown = getattr(p, "shutdown", None)
            if shutdown is not None:
                shutdown()
        was_stopping, self._stopping = self._stopping, False
        if was_stopping:
            self.ctx.workers_idle.disconnect(self._workers_ended)
            self.ctx.shutting_down = False
        event.accept()
        self.closed.emit()
        if was_stopping:  # a hidden window's close does not quit the app by itself
            quit_if_no_window_left()


def quit_if_no_window_left() -> None:
    """Quit the event loop, as closing the last visible window does (no-op outside exec())."""
    app = QApplication.instance()
    if app is None or not app.quitOnLastWindowClosed():
        return
    if not any(w.isVisible() and w.isWindow() and w.parentWidget() is None for w in app.topLevelWidgets()):
        app.quit()
