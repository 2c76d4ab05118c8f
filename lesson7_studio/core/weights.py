"""Pretrained ImageNet weights for encoders and the feature loss, through the torch hub cache.

Files are torchvision's (``torchvision.models.<Arch>_Weights.DEFAULT``, the weights fastai's
``unet_learner`` uses) and live where torchvision keeps them: ``torch.hub.get_dir()/checkpoints``.
When a file is missing and we are online it is downloaded (Progress events, cancellable,
sha256-prefix checked, written atomically); offline (``LESSON7_OFFLINE=1`` or the server
unreachable) a :class:`WeightsError` names the file and the folder to put it in.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

import torch

from .errors import Cancelled, WeightsError
from .events import CancelToken, EventCallback, Log, Progress, RateMeter, check, emit
from .images.atomic import atomic_open

ARCHS = ("resnet18", "resnet34", "resnet50", "densenet121", "vgg16_bn")

_WEIGHTS_ENUMS = {
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
    "densenet121": "DenseNet121_Weights",
    "vgg16_bn": "VGG16_BN_Weights",
}
_HASH_RE = re.compile(r"-([a-f0-9]*)\.")
_CHUNK = 1 << 20
_REACH_CACHE: dict[str, tuple[float, bool]] = {}


def _check_arch(arch: str) -> str:
    if arch not in _WEIGHTS_ENUMS:
        raise WeightsError(f"No pretrained weights known for '{arch}'. Known: {', '.join(ARCHS)}.")
    return arch


def weights_enum(arch: str):
    """torchvision's default weights entry for ``arch`` (e.g. ``ResNet34_Weights.IMAGENET1K_V1``)."""
    import torchvision.models as tvm

    return getattr(tvm, _WEIGHTS_ENUMS[_check_arch(arch)]).DEFAULT


def weights_url(arch: str) -> str:
    return weights_enum(arch).url


def weights_filename(arch: str) -> str:
    """File name in the hub cache, e.g. ``resnet34-b627a593.pth``."""
    return os.path.basename(urlparse(weights_url(arch)).path)


def weights_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints`` (honours ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_path(arch: str) -> Path:
    return weights_dir() / weights_filename(arch)


def _env_offline() -> bool:
    return os.environ.get("LESSON7_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _reachable(url: str, timeout: float = 3.0) -> bool:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return True
    host = parsed.hostname or ""
    now = time.monotonic()
    cached = _REACH_CACHE.get(host)
    if cached and now - cached[0] < 60:
        return cached[1]
    try:
        with socket.create_connection((host, parsed.port or 443), timeout=timeout):
            ok = True
    except OSError:
        ok = False
    _REACH_CACHE[host] = (now, ok)
    return ok


def is_offline(arch: str = "resnet34") -> bool:
    """True when ``LESSON7_OFFLINE=1`` or the weights server cannot be reached."""
    return _env_offline() or not _reachable(weights_url(arch))


def weights_status(arch: str) -> str:
    """``"found"`` (in the cache), ``"download"`` (missing, can be downloaded) or ``"offline"``."""
    if weights_path(arch).is_file():
        return "found"
    return "offline" if is_offline(arch) else "download"


def _missing_error(arch: str, why: str) -> WeightsError:
    return WeightsError(
        f"Pretrained {arch} weights are needed: {weights_filename(arch)} ({why}).",
        hint=f"Download {weights_url(arch)} on a connected machine and place it in {weights_dir()}, "
        "or build the model with pretrained=False.",
    )


def download_url(url: str, dest: Path, *, hash_prefix: Optional[str] = None, on_event: Optional[EventCallback] = None,
                 cancel: Optional[CancelToken] = None, label: str = "") -> Path:
    """Download ``url`` to ``dest`` atomically with Progress events (bytes), checking a sha256 prefix."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    label = label or dest.name
    sha = hashlib.sha256()
    try:  # atomic_open: a .part file beside dest, renamed onto it only when the block ends without error
        with atomic_open(dest) as out, urllib.request.urlopen(url, timeout=30) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else 0
            meter = RateMeter(total)
            done = 0
            emit(on_event, Progress(0, total, f"Downloading {label}", stage="weights", rate_unit="MB/s"))
            while True:
                check(cancel)
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                rate, eta = meter.update(done)
                emit(on_event, Progress(done, total, f"Downloading {label}", stage="weights",
                                        rate=None if rate is None else rate / 1e6, rate_unit="MB/s", eta_s=eta))
            digest = sha.hexdigest()
            if hash_prefix and not digest.startswith(hash_prefix):
                raise WeightsError(f"Downloaded {label} is damaged (sha256 {digest[:12]}..., expected {hash_prefix}...).",
                                   hint="Try again; if it keeps failing, download the file by hand.")
    except (Cancelled, WeightsError):
        raise
    except (OSError, urllib.error.URLError) as err:
        raise WeightsError(f"Could not download {url}: {err}",
                           hint=f"Place {dest.name} in {dest.parent} by hand, or work offline with pretrained=False.") from None
    return dest


def download_weights(arch: str, *, on_event: Optional[EventCallback] = None,
                     cancel: Optional[CancelToken] = None) -> Path:
    """Fetch ``arch``'s weights into the hub cache (no-op when present); returns the file path."""
    path = weights_path(arch)
    if path.is_file():
        return path
    if is_offline(arch):
        raise _missing_error(arch, "offline; it is not in the cache")
    m = _HASH_RE.search(path.name)
    emit(on_event, Log(f"Downloading {weights_url(arch)} to {path}"))
    return download_url(weights_url(arch), path, hash_prefix=m.group(1) if m else None, on_event=on_event,
                        cancel=cancel, label=path.name)


_DENSE_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _fix_keys(arch: str, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # torchvision's densenet files use old key names ("norm.1.weight" for "norm1.weight").
    if arch.startswith("densenet"):
        out = {}
        for k, v in sd.items():
            m = _DENSE_OLD_KEY.match(k)
            out[m.group(1) + m.group(2) if m else k] = v
        return out
    return sd


def resolve_pretrained(arch: str, *, download: bool | None = None, on_event: Optional[EventCallback] = None,
                       cancel: Optional[CancelToken] = None) -> dict[str, torch.Tensor]:
    """State dict of torchvision's ImageNet ``arch`` (full model, torchvision key names).

    ``download``: None = download when missing and online; False = never download.
    Raises WeightsError naming the file and folder when it is missing and cannot be downloaded.
    """
    _check_arch(arch)
    path = weights_path(arch)
    if not path.is_file():
        if download is False:
            raise _missing_error(arch, "not in the cache and downloading is off")
        download_weights(arch, on_event=on_event, cancel=cancel)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # damaged file or not a state dict
        raise WeightsError(f"Cannot read pretrained weights {path}: {err}",
                           hint="Delete the file and let it download again, or replace it by hand.") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path} is not a state dict of tensors.", hint="Delete it and download it again.")
    return _fix_keys(arch, sd)
