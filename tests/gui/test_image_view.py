"""ImageView / SplitView / FlickerView and the numpy -> QImage conversion."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402

from lesson7_studio.gui.widgets.heatmap import (  # noqa: E402
    apply_colormap,
    auto_gain,
    difference_map,
    overlay_heatmap,
    upsample_nearest,
)
from lesson7_studio.gui.widgets.image_view import FlickerView, ImageView, SplitView  # noqa: E402
from lesson7_studio.gui.widgets.qimage import qimage_to_array, to_qimage  # noqa: E402


def _rgb(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_to_qimage_formats_and_copy(qapp):
    a = _rgb()
    q = to_qimage(a)
    del a  # the QImage owns its pixels
    assert q.width() == 30 and q.height() == 20
    b = _rgb()
    assert np.array_equal(qimage_to_array(to_qimage(b)), b)
    assert np.array_equal(qimage_to_array(to_qimage(Image.fromarray(b))), b)
    assert np.array_equal(qimage_to_array(to_qimage(b.astype(np.uint16) * 257)), b)
    assert np.array_equal(qimage_to_array(to_qimage(b.astype(np.float32) / 255)), b)
    assert to_qimage(b[:, :, 0]).format() == QImage.Format.Format_Grayscale8
    rgba = np.dstack([b, np.full(b.shape[:2], 128, np.uint8)])
    assert to_qimage(rgba).format() == QImage.Format.Format_RGBA8888
    assert to_qimage(Image.fromarray(b).convert("P")).width() == 30
    with pytest.raises(ValueError):
        to_qimage(np.zeros((4, 4, 2), np.uint8))
    # a non-contiguous view is copied correctly
    assert np.array_equal(qimage_to_array(to_qimage(b[:, ::-1])), b[:, ::-1])


def _view(qtbot, cls=ImageView, w=300, h=200):
    v = cls()
    qtbot.addWidget(v)
    v.resize(w, h)
    v.show()
    qtbot.waitExposed(v)
    return v


def test_fit_one_to_one_and_pixel_mode(qtbot):
    v = _view(qtbot)
    v.set_image(_rgb(40, 60))
    assert v.is_fit()
    assert v.zoom() == pytest.approx(min(298 / 60, 198 / 40), rel=1e-3)
    assert v.visible_scene_rect().contains(v.sceneRect().adjusted(1, 1, -1, -1))
    # magnified: pixels are drawn as squares
    assert v._item.transformationMode() == Qt.TransformationMode.FastTransformation
    v.one_to_one()
    assert v.zoom() == pytest.approx(1.0)
    assert not v.is_fit()
    big = _view(qtbot)
    big.set_image(_rgb(800, 1200))
    assert big.zoom() < 1
    assert big._item.transformationMode() == Qt.TransformationMode.SmoothTransformation


def test_wheel_zoom_keeps_point_under_cursor(qtbot):
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    v = _view(qtbot)
    v.set_image(_rgb(100, 150))
    at = QPointF(70, 60)
    before = v._map_to_scene_f(at)
    ev = QWheelEvent(at, v.viewport().mapToGlobal(at), QPoint(0, 0), QPoint(0, 120),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    z0 = v.zoom()
    QApplication.sendEvent(v.viewport(), ev)
    assert v.zoom() == pytest.approx(z0 * 1.25)
    after = v._map_to_scene_f(at)
    assert abs(after.x() - before.x()) < 1.0 and abs(after.y() - before.y()) < 1.0


def test_link_syncs_zoom_and_pan_both_ways(qtbot):
    a = _view(qtbot)
    b = _view(qtbot)
    a.set_image(_rgb(100, 150))
    b.set_image(_rgb(200, 300, seed=1))  # twice the size: same region shown at half the zoom
    a.link(b)
    zooms = []
    b.zoom_changed.connect(zooms.append)
    a.set_zoom(4.0)
    assert b.zoom() == pytest.approx(2.0)
    assert zooms and zooms[-1] == pytest.approx(2.0)
    # pan a: b follows in normalised coordinates
    a.horizontalScrollBar().setValue(a.horizontalScrollBar().value() + 80)
    sa, sb = a.view_state(), b.view_state()
    assert sb.cx == pytest.approx(sa.cx, abs=0.01) and sb.cy == pytest.approx(sa.cy, abs=0.01)
    # and back from b to a
    b.set_zoom(3.0)
    assert a.zoom() == pytest.approx(6.0)
    b.fit()
    assert a.is_fit()
    # three views chain: c joins the group and follows a
    c = _view(qtbot)
    c.set_image(_rgb(100, 150, seed=2))
    b.link(c)
    a.set_zoom(5.0)
    assert c.zoom() == pytest.approx(5.0)
    c.unlink()
    a.set_zoom(2.0)
    assert c.zoom() == pytest.approx(5.0)


def test_drag_pans_and_linked_view_follows(qtbot):
    a = _view(qtbot)
    b = _view(qtbot)
    a.set_image(_rgb(100, 150))
    b.set_image(_rgb(100, 150, seed=1))
    a.link(b)
    a.set_zoom(6.0)
    c0 = a.view_state().cx
    vp = a.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=QPoint(150, 100))
    for x in range(145, 80, -5):
        qtbot.mouseMove(vp, QPoint(x, 100))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=QPoint(80, 100))
    assert a.view_state().cx > c0 + 0.02  # dragged left: the view moved right
    assert b.view_state().cx == pytest.approx(a.view_state().cx, abs=0.01)


def test_split_view_divider_moves_with_mouse_and_clips_after(qtbot):
    v = _view(qtbot, SplitView, 400, 200)
    before = np.zeros((50, 100, 3), np.uint8)
    after = np.full((100, 200, 3), 255, np.uint8)  # 2x: before is stretched onto it
    v.set_images(before, after)
    assert v.labels() == ("Before", "After")
    assert v._item.transform().m11() == pytest.approx(2.0)
    x0 = v._clip.rect().left()
    assert x0 == pytest.approx(100, abs=2)  # divider in the middle of the image
    moved = []
    v.split_changed.connect(moved.append)
    vp = v.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=QPoint(v.divider_x(), 100))
    qtbot.mouseMove(vp, QPoint(120, 100))
    qtbot.mouseMove(vp, QPoint(100, 100))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    assert v.split() == pytest.approx(100 / vp.width(), abs=0.01)
    assert moved
    x1 = v._clip.rect().left()
    assert x1 < x0 - 20
    assert v._clip.rect().right() == pytest.approx(200)
    # the divider stays put on screen while zooming; the clip follows the image under it
    v.set_zoom(4.0)
    assert v.divider_scene_x() == pytest.approx(v._map_to_scene_f(QPointF(v.divider_x(), 0)).x())
    v.fit()
    v.set_split(1.0)  # all "before"
    assert v._clip.rect().width() == pytest.approx(0, abs=1)
    v.set_split(0.0)  # all "after"
    assert v._clip.rect().width() == pytest.approx(200)


def test_flicker_view_alternates(qtbot):
    v = _view(qtbot, FlickerView)
    v.set_images([_rgb(), _rgb(seed=1)], ["A", "B"])
    assert v.count() == 2 and v.current() == 0 and v.label() == "A"
    assert v._item.isVisible() and not v._extra[0].isVisible()
    v.next()
    assert v.current() == 1 and v.label() == "B"
    assert not v._item.isVisible() and v._extra[0].isVisible()
    v.set_interval(50)
    v.set_flicker(True)
    seen = []
    v.shown_changed.connect(seen.append)
    qtbot.waitUntil(lambda: len(seen) >= 2, timeout=3000)
    v.set_flicker(False)
    assert not v.is_flickering()


def test_heatmap_helpers():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[:4] = 51  # 0.2 difference in the top half
    d = difference_map(a, b)
    assert d[:4].mean() == pytest.approx(0.2, abs=1e-3) and d[4:].max() == 0
    assert auto_gain(d) == pytest.approx(5.0, rel=0.05)
    c = apply_colormap(np.array([[0.0, 1.0]]))
    assert c.shape == (1, 2, 3) and c[0, 0].sum() < 20 and c[0, 1].sum() > 500
    up = upsample_nearest(np.array([[0.0, 1.0], [1.0, 0.0]]), 4, 6)
    assert up.shape == (4, 6) and up[0, 0] == 0 and up[0, 5] == 1 and up[3, 0] == 1
    ov = overlay_heatmap(np.zeros((4, 6, 3), np.uint8), np.array([[1.0, 0.0]]), "fake", 1.0)
    assert ov[0, 0, 0] > 180 and ov[0, 0, 1] < 80  # fake = red
    assert ov[0, 5, 1] > ov[0, 5, 0]  # real = green
