"""The Restore panel (:class:`RestorePanel`), in parts: :mod:`.form` (model, inputs, output
options), :mod:`.file_list` (the lazy list of input files), :mod:`.view` (the preview) and
:mod:`.monitor` (progress, summary, failures); :mod:`.panel` puts them together and runs core's
jobs (lesson7_studio.core.restore.jobs) in workers."""

from .file_list import FETCH_CHUNK, FileListModel
from .form import FORMATS, IMAGE_FILTER, TILES
from .panel import RestorePanel

__all__ = ["RestorePanel", "FileListModel", "FETCH_CHUNK", "FORMATS", "TILES", "IMAGE_FILTER"]
