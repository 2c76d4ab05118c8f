"""The Data panel: photos, the crappify recipe with its preview, and the dataset builder.

:mod:`.panel` wires the parts: :mod:`.folder_bar` (the photo folder), :mod:`.preview_pane`
(the selected photo's pair as the build writes it, and the dataset seed), :mod:`.build_form`
(the build's settings and progress) and :mod:`.summary` (the dialog closing a build).
"""

from __future__ import annotations

from .build_form import BuildForm, safe_name
from .folder_bar import FolderBar
from .panel import DataPanel
from .preview_pane import PreviewPane
from .summary import BuildSummaryDialog

__all__ = ["BuildForm", "BuildSummaryDialog", "DataPanel", "FolderBar", "PreviewPane", "safe_name"]
