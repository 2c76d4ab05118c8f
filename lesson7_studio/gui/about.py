"""The About dialog (versions, device, where files go) and the status bar's device text."""

from __future__ import annotations

import platform
import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from lesson7_studio import __version__
from lesson7_studio.core.project import data_dir, resources_dir

from .context import AppContext
from .icons import icon


def device_text(ctx: AppContext) -> str:
    """"Device: CPU", "Device: CUDA (<GPU name>)" ...; "Device: …" while it is detected."""
    if not ctx.device_known:  # detected in the background at start-up
        return "Device: \u2026"
    from lesson7_studio.core.system import device_name

    dev = ctx.device
    text = f"Device: {dev.upper() if dev != 'cpu' else 'CPU'}"
    name = device_name(dev)
    return text + (f" ({name})" if name else "")


def _table(items) -> str:
    return "".join(f"<tr><td style='padding-right:12px'><b>{k}</b></td><td>{v}</td></tr>" for k, v in items)


def about_text(ctx: AppContext) -> str:
    """The About dialog's HTML: versions, device, where files go."""
    import numpy
    import PIL
    import pyqtgraph
    import PySide6
    from PySide6.QtCore import qVersion

    from lesson7_studio.core.system import device_name, system_info

    info = system_info()
    dev = ctx.device
    name = device_name(dev)
    if name:
        dev += f" — {name}"
    rows = [
        ("Lesson7 Studio", __version__),
        ("Python", f"{platform.python_version()} ({sys.platform})"),
        ("PyTorch", f"{info.torch} (torchvision {info.torchvision})"),
        ("Qt / PySide6", f"{qVersion()} / {PySide6.__version__}"),
        ("pyqtgraph", pyqtgraph.__version__),
        ("NumPy / Pillow", f"{numpy.__version__} / {PIL.__version__}"),
        ("Device", f"{dev} (CPU threads: {info.cpu_threads})"),
    ]
    paths = [
        ("Project", ctx.project.root),
        ("Projects (data dir)", data_dir()),
        ("Settings", ctx.settings.path),
        ("Pretrained weights cache", info.weights_cache),
        ("Bundled resources", resources_dir()),
    ]
    return (
        "<h3>Lesson7 Studio</h3>"
        "<p>Train and apply image-restoration models the way fast.ai lesson 7 teaches them.</p>"
        f"<table>{_table(rows)}</table><p><b>Where files go</b></p><table>{_table(paths)}</table>"
    )


def about_dialog(parent: QWidget, ctx: AppContext) -> QMessageBox:
    box = QMessageBox(parent)
    box.setObjectName("aboutDialog")
    box.setWindowTitle("About Lesson7 Studio")
    box.setIconPixmap(icon("lesson7-studio.svg").pixmap(64, 64))
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(about_text(ctx))
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    return box
