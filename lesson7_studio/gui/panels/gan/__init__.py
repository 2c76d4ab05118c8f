"""Inspect panel: scrub through a run's sample images epoch by epoch and see where the critic
believes a generated image is fake.

The training engine writes ``samples/<stage>_epoch<NNN>.png`` after every epoch (with its
layout in a .json beside it): for restore and GAN stages a grid of rows (input | prediction |
target), for WGAN stages the fixed-noise grid. The critic's patch map is computed by core from
the run's newest ``checkpoints/*.critic.safetensors`` on the prediction shown.

``panel`` holds the timeline, ``critic_view`` the image with the critic's map beside it.
"""

from .panel import GanPanel, format_metric

__all__ = ["GanPanel", "format_metric"]
