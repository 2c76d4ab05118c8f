"""What the app tells the user about this machine: the device's name, library versions, the
CPU threads and the pretrained-weights cache (the GUI's status bar and About dialog show these,
so the GUI never imports torch itself)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def device_name(device: str) -> str:
    """The GPU's name for a "cuda" device ("" for others, or when it cannot be read)."""
    if not device.startswith("cuda"):
        return ""
    import torch

    try:
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return torch.cuda.get_device_name(index)
    except Exception:  # noqa: BLE001 - the name is informative only
        return ""


@dataclass(frozen=True)
class SystemInfo:
    """Versions of the numeric libraries, the CPU threads and where pretrained weights go."""

    torch: str
    torchvision: str
    cpu_threads: int
    weights_cache: Path


def system_info() -> SystemInfo:
    """Imports torch (seconds on a first call): for the About dialog, not for start-up."""
    import torch

    from .weights import weights_dir

    try:
        import torchvision

        tv = torchvision.__version__
    except ImportError:  # pragma: no cover - torchvision is a dependency
        tv = "not installed"
    return SystemInfo(torch.__version__, tv, torch.get_num_threads(), weights_dir())
