"""Community models (ESRGAN, Real-ESRGAN, SwinIR ...) through spandrel, behind the Restorer
convention; their weights are read safely first (never unpickling code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ModelError

SPANDREL_HINT = 'Install the optional extra: pip install "lesson7-studio[spandrel]"'


class SpandrelRestorer(nn.Module):
    """A spandrel ``ImageModelDescriptor`` behind the Restorer convention: (B,3,h,w) in [0,1]
    -> (B,3,h*s,w*s) in [0,1], with ``.info`` (a ModelInfo), ``min_size``, ``square`` and the
    ``precisions`` the architecture supports."""

    def __init__(self, descriptor: Any, source: Path | None = None) -> None:
        super().__init__()
        from ..models.registry import ModelInfo

        self.net = descriptor.model
        self.source_file = source  # keys the precision verdict (precision_cache)
        self.in_channels = int(descriptor.input_channels)
        self.out_channels = int(descriptor.output_channels)
        if self.in_channels not in (1, 3) or self.out_channels not in (1, 3):
            raise ModelError(
                f"{source.name if source else 'The model'} takes {self.in_channels} and gives "
                f"{self.out_channels} channels; only RGB or grey image models can restore photos."
            )
        req = descriptor.size_requirements
        self.min_size = int(getattr(req, "minimum", 0) or 0)
        self.square = bool(getattr(req, "square", False))
        arch = descriptor.architecture
        arch_name = getattr(arch, "name", None) or str(getattr(arch, "id", "model"))
        self.precisions = {"fp32"}
        if getattr(descriptor, "supports_half", False):
            self.precisions.add("fp16")
        if getattr(descriptor, "supports_bfloat16", False):
            self.precisions.add("bf16")
        self.info = ModelInfo(
            name=f"spandrel:{arch_name}",
            description=f"{arch_name} x{descriptor.scale} ({descriptor.purpose}) loaded by spandrel"
            + (f" from {source.name}" if source else ""),
            kind="restorer",
            options={"architecture": str(getattr(arch, "id", arch_name)), "file": str(source) if source else None},
            params=sum(p.numel() for p in self.net.parameters()),
            in_channels=3,
            out_channels=3,
            scale=int(descriptor.scale),
            model_scale=int(descriptor.scale),
            size_multiple=int(getattr(req, "multiple_of", 1) or 1),
            mean=None,
            std=None,
        )
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 1:
            x = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        y = self.net(x)
        if self.out_channels == 1:
            y = y.expand(-1, 3, -1, -1)
        return y.clamp(0, 1) if not self.training else y


def load_spandrel(path: Path, device: torch.device) -> SpandrelRestorer:
    from .. import checkpoint

    # Tensors first, through our safe reader: a pickle with code is refused before anything else.
    sd = checkpoint.load_foreign_state_dict(path)
    try:
        import spandrel
    except ImportError:
        raise ModelError(
            f"{path.name} is not a Lesson7 Studio checkpoint; community models (ESRGAN, Real-ESRGAN, "
            "SwinIR, ...) are loaded with spandrel, which is not installed.",
            hint=SPANDREL_HINT,
        ) from None
    try:
        desc = spandrel.ModelLoader(device=torch.device("cpu")).load_from_state_dict(sd)
    except Exception as err:  # spandrel's UnsupportedModelError and shape mismatches
        raise CheckpointError(f"{path.name}: spandrel does not recognise this architecture ({err}).") from None
    if not isinstance(desc, spandrel.ImageModelDescriptor):
        raise ModelError(f"{path.name} is a {type(desc).__name__} (e.g. inpainting); it cannot restore photos.")
    return SpandrelRestorer(desc, path).to(device)
