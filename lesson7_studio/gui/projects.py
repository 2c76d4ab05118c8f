"""The File menu's project actions: new, open, open recent (the main window delegates here)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from lesson7_studio.core.project import Project, data_dir

from .errors import show_error


def can_switch_project(win) -> bool:
    """False (after saying why) while a panel of ``win`` works."""
    busy = win._busy_panels()
    if not busy:
        return True
    QMessageBox.information(
        win,
        "Work in progress",
        f"Wait for the work in {', '.join(b.title() for b in busy)} to finish, "
        "or cancel it, before switching projects.",
    )
    return False


def new_project(win) -> None:
    _pick_project(win, "New project: choose an empty folder (or create one)", new=True)


def open_project(win) -> None:
    _pick_project(win, "Open project folder", new=False)


def _pick_project(win, title: str, new: bool) -> None:
    if not can_switch_project(win):
        return
    start = win.ctx.settings.value("dialogs/project_dir", str(data_dir()))
    folder = QFileDialog.getExistingDirectory(win, title, start)
    if folder:
        set_project(win, Path(folder), new=new)


def set_project(win, folder: Path, new: bool) -> None:
    """Make ``folder`` the project (asking first when an existing folder is not one yet)."""
    try:
        if not new and not Project.is_project(folder):
            answer = QMessageBox.question(
                win,
                "Not a project yet",
                f"{folder} has no datasets/, runs/ and models/ folders.\n\n"
                "Make it a project (the three folders are added)?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        win.ctx.settings.set_value("dialogs/project_dir", str(folder.parent))
        win.ctx.set_project(Project(folder))
        win.ctx.status_message.emit(f"Project {folder}")
    except Exception as exc:  # noqa: BLE001 - shown to the user
        show_error(win, exc)


def fill_recent_menu(win) -> None:
    """Refill ``win.recent_menu`` with the recent projects that still exist."""
    menu, settings = win.recent_menu, win.ctx.settings
    menu.clear()
    items = [p for p in settings.recent("recent/projects") if Path(p).is_dir()]
    if not items:
        a = menu.addAction("No recent projects")
        a.setEnabled(False)
        return
    for p in items:
        act = menu.addAction(p)
        act.triggered.connect(lambda _c=False, p=p: _open_recent(win, p))
    menu.addSeparator()
    menu.addAction("Clear List", lambda: settings.set_value("recent/projects", []))


def _open_recent(win, path: str) -> None:
    if can_switch_project(win):
        set_project(win, Path(path), new=False)
