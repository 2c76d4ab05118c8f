"""Render lesson7_studio/resources/icons/lesson7-studio.svg (the source of truth) to the hicolor PNG sizes.

    QT_QPA_PLATFORM=offscreen python3 packaging/render_icons.py

Writes lesson7_studio/resources/icons/hicolor/<N>x<N>/apps/lesson7-studio.png for every N in SIZES.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "lesson7_studio" / "resources" / "icons" / "lesson7-studio.svg"
HICOLOR = ROOT / "lesson7_studio" / "resources" / "icons" / "hicolor"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def render(svg: Path, size: int):
    """The SVG rendered to a transparent ``size`` x ``size`` QImage (needs a QGuiApplication)."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    for size in SIZES:
        out = HICOLOR / f"{size}x{size}" / "apps" / "lesson7-studio.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.part")
        if not render(SVG, size).save(str(tmp), "PNG"):
            raise OSError(f"could not write {tmp}")
        os.replace(tmp, out)
        print(out.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
