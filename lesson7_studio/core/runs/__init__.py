"""Reading run folders: configs, metrics, checkpoints and sample grids (nothing loaded into torch).

A run folder as :mod:`lesson7_studio.core.train.run` writes it::

    config.json                      the TrainConfig (recipe, arch, stages, preview_samples ...)
    metrics.csv                      one row per epoch: stage, epoch, step, train_loss, ..., lr, seconds
    checkpoints/<stage>-s<step>.safetensors          generator checkpoints (+ .critic.safetensors)
    samples/<stage>_epoch<NNN>.png   the epoch's sample grid
    samples/<stage>_epoch<NNN>.json  its layout (rows, columns, cell boxes, captions)
    model.safetensors                the final model

Every front end (the Train, Inspect, Compare and Restore panels, the CLI) reads runs through
these functions (``folder``: config, metrics, checkpoints, samples; ``grids``: sample-grid
layouts). None of them imports torch, so the GUI can call them on its own thread.
Missing or damaged files read as "nothing there" (an empty config, no rows, no checkpoint):
a run in progress is written to while it is read. :func:`read_grid_layout` raises
:class:`RunFolderError` for a layout file that exists but cannot be used.
"""

from .folder import (
    CHECKPOINT_RE,
    CRITIC_RE,
    ROW_FIELDS,
    SAMPLE_RE,
    MetricsRow,
    RunFolderError,
    Sample,
    describe_config,
    guess_kind,
    last_metric,
    list_runs,
    list_samples,
    metrics_by_epoch,
    newest_checkpoint,
    newest_critic,
    parse_metrics_row,
    read_config,
    read_metrics,
    run_checkpoints,
    run_tag,
    samples_by_time,
    stage_kinds,
)
from .grids import (
    GRID_BG,
    GRID_FORMAT,
    GRID_PAD,
    GRID_VERSION,
    PAIR_COLUMNS,
    GridLayout,
    grid_layout,
    layout_path,
    read_grid_layout,
    read_image,
    sample_cells,
    sample_title,
    split_grid,
    write_grid_layout,
)

__all__ = [
    "CHECKPOINT_RE", "CRITIC_RE", "GRID_BG", "GRID_FORMAT", "GRID_PAD", "GRID_VERSION", "PAIR_COLUMNS", "ROW_FIELDS",
    "SAMPLE_RE", "GridLayout", "MetricsRow", "RunFolderError", "Sample", "describe_config", "grid_layout",
    "guess_kind", "last_metric", "layout_path", "list_runs", "list_samples", "metrics_by_epoch",
    "newest_checkpoint", "newest_critic", "parse_metrics_row", "read_config", "read_grid_layout", "read_image",
    "read_metrics", "run_checkpoints", "run_tag", "sample_cells", "sample_title", "samples_by_time",
    "split_grid", "stage_kinds", "write_grid_layout",
]
