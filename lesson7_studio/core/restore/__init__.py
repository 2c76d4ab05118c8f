"""The restoration engine: tiled inference on images of any size, batch restore of folders,
loading of our and foreign models, and evaluation against bicubic upsampling.

A *model* here is anything that follows the Restorer convention (core/models/registry.py):
called with a float tensor (B,3,h,w) of degraded RGB in [0,1] it returns (B,3,h*s,w*s) in
[0,1], and ``model.info`` tells ``scale`` (s), ``model_scale`` and ``size_multiple`` (the
network input's H and W must be multiples of it, after the Restorer's own ``scale/model_scale``
bicubic resize). Our :class:`~..models.Restorer`, the spandrel adapter (:mod:`.foreign`) and
:class:`~..export.OnnxRestorer` all qualify.

Modules, one responsibility each:

- :mod:`.facts`      what tiling needs to know about a model; the per-model cache
- :mod:`.memory`     memory available, the activation estimate, the tile size that fits
- :mod:`.precision`  precision "auto": the candidate, the probe against fp32, the kept verdict
- :mod:`.runner`     one model on batches of tiles (device, channels_last, bf16 copy, ensemble)
- :mod:`.tiling`     the tile plan, blending, the tiled pass
- :mod:`.image`      restore one array or ImageData
- :mod:`.outputs`    output formats and paths of a folder restore
- :mod:`.folder`     restore a folder (RestoreSummary)
- :mod:`.foreign`    community models through spandrel
- :mod:`.loading`    load_any_model: "starter", our checkpoints, ONNX, community weights
- :mod:`.evaluate`   scores against the originals and baselines
- :mod:`.jobs`       a front end's jobs: scan inputs, preview, restore several inputs
"""

from __future__ import annotations

from ..devices import resolve_device
from .evaluate import evaluate, metric_row
from .facts import ModelFacts, model_facts
from .folder import RestoreSummary, restore_folder
from .foreign import SPANDREL_HINT, SpandrelRestorer
from .image import restore_array, restore_image
from .jobs import Found, Preview, load_cached, preview_image, restore_inputs, scan_inputs
from .loading import load_any_model, starter_model_path
from .memory import available_memory
from .outputs import OUTPUT_FORMATS
from .precision import PRECISION_MIN_PSNR, PROBE_PAYS_AT

__all__ = [
    "RestoreSummary",
    "ModelFacts",
    "model_facts",
    "restore_array",
    "restore_image",
    "restore_folder",
    "load_any_model",
    "evaluate",
    "resolve_device",
    "available_memory",
    "OUTPUT_FORMATS",
    "SpandrelRestorer",
    "SPANDREL_HINT",
    "starter_model_path",
    "metric_row",
    "PRECISION_MIN_PSNR",
    "PROBE_PAYS_AT",
    "Found",
    "Preview",
    "scan_inputs",
    "load_cached",
    "preview_image",
    "restore_inputs",
]
