"""fastai v2 ``DynamicUnet`` over torchvision encoders: lesson 7's generator.

Structure (fastai/vision/models/unet.py, 2.8): encoder, BatchNorm + ReLU, middle ConvLayer pair
(ni -> 2ni -> ni), one UnetBlock per resolution change of the encoder (PixelShuffle_ICNR up,
BatchNorm on the skip, ReLU on the concatenation, two ConvLayers; self-attention after the second
conv of the third block from the end), a last PixelShuffle_ICNR back to input size, the cross
connection with the input (concatenate), a ResBlock, a 1x1 ConvLayer and SigmoidRange(y_range).

Encoders are cut as fastai's ``create_body`` does: a ResNet loses avgpool and fc (cut -2).
For DenseNet, fastai cuts -1 and so keeps ``features`` as one child, which hides every
resolution change and leaves its U-Net without skip connections; here ``features``' own children
are the encoder, so the densenet U-Net gets the four skips a U-Net is meant to have.

The ResNet U-Nets are fastai's layer for layer: :func:`convert_fastai_unet` maps a fastai
``DynamicUnet`` state dict onto ours (same tensors, same shapes) and the outputs then agree.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from .layers import ConvLayer, PixelShuffle_ICNR, ResBlock, SelfAttention, SigmoidRange, apply_init, batchnorm
from .registry import IMAGENET_MEAN, IMAGENET_STD, Option, register

ENCODERS = ("resnet18", "resnet34", "resnet50", "densenet121")
# fastai's model_meta splits: resnet body[:6] / body[6:]; densenet features[:7] / features[7:].
_SPLIT = {"resnet18": 6, "resnet34": 6, "resnet50": 6, "densenet121": 7}


def create_body(arch: str, pretrained: bool = False, *, on_event=None) -> nn.Sequential:
    """torchvision ``arch`` cut before its pooling head (optionally with ImageNet weights)."""
    import torchvision.models as tvm

    if arch not in ENCODERS:
        raise ModelError(f"Unknown encoder '{arch}'. Known encoders: {', '.join(ENCODERS)}.")
    model = getattr(tvm, arch)(weights=None)
    if pretrained:
        from ..weights import resolve_pretrained

        model.load_state_dict(resolve_pretrained(arch, on_event=on_event))
    if arch.startswith("densenet"):
        return model.features
    return nn.Sequential(*list(model.children())[:-2])


def _in_channels(m: nn.Module) -> int:
    for sub in m.modules():
        if isinstance(sub, (nn.Conv2d, nn.Conv1d, nn.Conv3d)):
            return sub.in_channels
    raise ModelError("Encoder has no convolution to read its input channels from.")


def _probe_sizes(encoder: nn.Sequential, size: tuple[int, int]) -> list[torch.Size]:
    """Output shape of each encoder child for a dummy input (fastai ``model_sizes``)."""
    p = next(encoder.parameters())
    was_training = encoder.training
    encoder.eval()
    shapes = []
    with torch.no_grad():
        x = torch.zeros(1, _in_channels(encoder), *size, device=p.device, dtype=p.dtype)
        for child in encoder.children():
            x = child(x)
            shapes.append(x.shape)
    encoder.train(was_training)
    return shapes


def _size_change_idxs(sizes: Sequence[torch.Size]) -> list[int]:
    """Indexes of the children after which the spatial size changes."""
    return [i for i in range(len(sizes) - 1) if sizes[i][-1] != sizes[i + 1][-1]]


class UnetBlock(nn.Module):
    """Upsample ``up_in_c`` channels (PixelShuffle_ICNR to ``up_in_c // 2``), concatenate the
    BatchNormed skip (``x_in_c``), ReLU, two ConvLayers (optionally self-attention)."""

    def __init__(self, up_in_c: int, x_in_c: int, final_div: bool = True, blur: bool = False,
                 act_cls: Callable[[], nn.Module] = nn.ReLU, self_attention: bool = False,
                 init: Callable = nn.init.kaiming_normal_, norm_type: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__()
        self.shuf = PixelShuffle_ICNR(up_in_c, up_in_c // 2, blur=blur, act_cls=act_cls, norm_type=norm_type)
        self.bn = batchnorm(x_in_c)
        ni = up_in_c // 2 + x_in_c
        nf = ni if final_div else ni // 2
        self.conv1 = ConvLayer(ni, nf, act_cls=act_cls, norm_type=norm_type, **kwargs)
        self.conv2 = ConvLayer(nf, nf, act_cls=act_cls, norm_type=norm_type,
                               xtra=SelfAttention(nf) if self_attention else None, **kwargs)
        self.relu = act_cls()
        self.out_channels = nf
        apply_init(nn.Sequential(self.conv1, self.conv2), init)

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up_out = self.shuf(up_in)
        if skip.shape[-2:] != up_out.shape[-2:]:
            up_out = F.interpolate(up_out, skip.shape[-2:], mode="nearest")
        cat_x = self.relu(torch.cat([up_out, self.bn(skip)], dim=1))
        return self.conv2(self.conv1(cat_x))


class DynamicUnet(nn.Module):
    """U-Net built on ``encoder`` (an ``nn.Sequential`` whose children run in order).

    (B, C_in, H, W) -> (B, n_out, H, W); H and W multiples of the encoder's total stride.
    ``split`` is the encoder child index that separates the two encoder layer groups.
    """

    def __init__(self, encoder: nn.Sequential, n_out: int, *, blur: bool = False, blur_final: bool = True,
                 self_attention: bool = False, y_range: Optional[tuple[float, float]] = None,
                 last_cross: bool = True, bottle: bool = False, act_cls: Callable[[], nn.Module] = nn.ReLU,
                 init: Callable = nn.init.kaiming_normal_, norm_type: Optional[str] = None,
                 split: Optional[int] = None, probe_size: tuple[int, int] = (64, 64), **kwargs: Any) -> None:
        super().__init__()
        self.encoder = encoder
        sizes = _probe_sizes(encoder, probe_size)
        self.skip_idxs = _size_change_idxs(sizes)  # encoder children whose outputs feed the blocks
        n_enc = len(sizes)
        self.split = split if split is not None else n_enc // 2
        ni = sizes[-1][1]
        self.bn = batchnorm(ni)
        self.relu = nn.ReLU()
        self.middle_conv = nn.Sequential(
            ConvLayer(ni, ni * 2, act_cls=act_cls, norm_type=norm_type, **kwargs),
            ConvLayer(ni * 2, ni, act_cls=act_cls, norm_type=norm_type, **kwargs),
        )
        blocks = []
        up_c = ni
        rev = list(reversed(self.skip_idxs))
        for i, idx in enumerate(rev):
            not_final = i != len(rev) - 1
            block = UnetBlock(up_c, int(sizes[idx][1]), final_div=not_final, blur=blur and (not_final or blur_final),
                              self_attention=self_attention and i == len(rev) - 3, act_cls=act_cls, init=init,
                              norm_type=norm_type, **kwargs)
            blocks.append(block)
            up_c = block.out_channels
        self.blocks = nn.ModuleList(blocks)
        ni = up_c
        # The encoder's first size change halves the input, so a last x2 brings it back.
        self.shuf = PixelShuffle_ICNR(ni, act_cls=act_cls, norm_type=norm_type) if sizes[0][-2:] != probe_size else None
        self.last_cross = last_cross
        if last_cross:
            ni += _in_channels(encoder)
            self.res = ResBlock(1, ni, ni // 2 if bottle else ni, act_cls=act_cls, norm_type=norm_type, **kwargs)
        else:
            self.res = None
        self.final_conv = ConvLayer(ni, n_out, ks=1, act_cls=None, norm_type=norm_type, **kwargs)
        apply_init(self.middle_conv, init)
        if self.res is not None:  # fastai re-inits layers[-2]: the ResBlock when last_cross
            apply_init(self.res, init)
        self.y_range = SigmoidRange(*y_range) if y_range is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, n_out, H, W)
        skips = []
        h = x
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i in self.skip_idxs:
                skips.append(h)
        h = self.middle_conv(self.relu(self.bn(h)))
        for block, skip in zip(self.blocks, reversed(skips)):
            h = block(h, skip)
        if self.shuf is not None:
            h = self.shuf(h)
        if h.shape[-2:] != x.shape[-2:]:
            h = F.interpolate(h, x.shape[-2:], mode="nearest")
        if self.res is not None:
            h = self.res(torch.cat([h, x], dim=1))
        h = self.final_conv(h)
        if self.y_range is not None:
            h = self.y_range(h)
        return h

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """[encoder up to ``split``, rest of the encoder, decoder + head] (fastai's splitter)."""
        children = list(self.encoder.children())
        g0 = [p for m in children[: self.split] for p in m.parameters()]
        g1 = [p for m in children[self.split :] for p in m.parameters()]
        enc_ids = {id(p) for p in self.encoder.parameters()}
        g2 = [p for p in self.parameters() if id(p) not in enc_ids]
        return [g0, g1, g2]


def build_unet(arch: str, *, pretrained: bool = False, blur: bool = True, self_attention: bool = True,
               norm_type: str = "weight", y_range: Optional[tuple[float, float]] = (-3.0, 3.0), n_out: int = 3,
               last_cross: bool = True, scale: int = 2) -> DynamicUnet:
    """The lesson's ``unet_learner(dls, arch, blur=True, norm_type=NormType.Weight,
    self_attention=True, y_range=(-3., 3.))`` model. ``scale`` only describes the task (the net
    restores at its input size)."""
    if y_range is not None:
        if len(y_range) != 2 or not y_range[0] < y_range[1]:
            raise ModelError(f"y_range must be (low, high) with low < high; got {y_range!r}.")
        y_range = (float(y_range[0]), float(y_range[1]))
    body = create_body(arch, pretrained)
    return DynamicUnet(body, n_out, blur=blur, self_attention=self_attention, y_range=y_range,
                       last_cross=last_cross, norm_type=norm_type, split=_SPLIT[arch])


def _rename_norm_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``torch.nn.utils.weight_norm`` / ``spectral_norm`` key names -> the parametrizations' names."""
    out = {}
    for k, v in sd.items():
        prefix, _, leaf = k.rpartition(".")
        pre = f"{prefix}." if prefix else ""
        if leaf == "weight_g":
            k = f"{pre}parametrizations.weight.original0"
        elif leaf == "weight_v" and f"{pre}weight_g" in sd:
            k = f"{pre}parametrizations.weight.original1"
        elif leaf == "weight_orig":
            k = f"{pre}parametrizations.weight.original"
        elif leaf == "weight_u" and f"{pre}weight_orig" in sd:
            k = f"{pre}parametrizations.weight.0._u"
        elif leaf == "weight_v" and f"{pre}weight_orig" in sd:
            k = f"{pre}parametrizations.weight.0._v"
        out[k] = v
    return out


def _detect_encoder(sd: dict[str, torch.Tensor], prefix: str) -> str:
    if f"{prefix}4.0.conv3.weight" in sd:
        return "resnet50"
    if f"{prefix}4.2.conv1.weight" in sd:
        return "resnet34"
    if f"{prefix}4.1.conv1.weight" in sd:
        return "resnet18"
    raise ModelError("Cannot tell the U-Net's encoder from its weights: fastai U-Nets over torchvision "
                     "ResNet-18/34/50 can be imported (fastai's DenseNet U-Net has no skip connections).")


def convert_fastai_unet(state_dict: dict[str, torch.Tensor]) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """A fastai 2.x ``DynamicUnet`` state dict (``learn.model.state_dict()``, or the ``"model"``
    entry of a ``learn.save`` file) -> (registry name, options, state dict for our net).

    fastai keeps its layers in one list (``layers.0`` encoder, ``layers.1`` BatchNorm,
    ``layers.3`` middle convs, then one entry per UnetBlock, the last PixelShuffle_ICNR, the
    ResBlock and the final ConvLayer) and uses ``torch.nn.utils.weight_norm``/``spectral_norm``
    key names. ``y_range`` and ``blur`` leave no trace in the weights; they get the lesson's values.
    """
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    if not any(k.startswith("layers.0.") for k in sd):
        raise ModelError("Not a fastai DynamicUnet state dict (no 'layers.0.' encoder keys).")
    by_idx: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in sd.items():
        head, _, rest = k.partition(".")
        idx, _, rest = rest.partition(".")
        if head != "layers" or not idx.isdigit():
            raise ModelError(f"Unexpected key '{k}' in a fastai DynamicUnet state dict.")
        by_idx.setdefault(int(idx), {})[rest] = v
    blocks = [i for i in sorted(by_idx) if i > 3 and any(r.startswith("shuf.") for r in by_idx[i])]
    after = [i for i in sorted(by_idx) if i > (blocks[-1] if blocks else 3)]
    names: dict[int, str] = {0: "encoder", 1: "bn", 3: "middle_conv"}
    names.update({i: f"blocks.{j}" for j, i in enumerate(blocks)})
    if not after:
        raise ModelError("fastai DynamicUnet state dict without a final convolution.")
    names[after[-1]] = "final_conv"
    for i in after[:-1]:
        names[i] = "res" if any(r.startswith("convpath.") for r in by_idx[i]) else "shuf"
    out = {f"{names[i]}.{rest}": v for i, d in by_idx.items() if i in names for rest, v in d.items()}
    if len(out) != len(sd):
        raise ModelError("fastai DynamicUnet state dict has layers this converter does not know.")
    arch = _detect_encoder(out, "encoder.")
    mid = [k for k in sd if k.startswith("layers.3.0.0.")]
    norm_type = ("weight" if any(k.endswith("weight_g") for k in mid) else
                 "spectral" if any(k.endswith("weight_orig") for k in mid) else
                 "batch" if "layers.3.0.1.running_mean" in sd else "none")
    n_out = next(int(v.shape[0]) for k, v in out.items() if k.startswith("final_conv.0.") and v.dim() == 4)
    options = dict(pretrained=False, blur=True, self_attention=any(k.endswith(".gamma") for k in out),
                   norm_type=norm_type, y_range=(-3.0, 3.0), n_out=n_out,
                   last_cross=any(k.startswith("res.") for k in out))
    return f"unet-{arch}", options, _rename_norm_keys(out)


_PRETTY = {"resnet18": "ResNet-18", "resnet34": "ResNet-34", "resnet50": "ResNet-50", "densenet121": "DenseNet-121"}


def _register(arch: str) -> None:
    from ..weights import weights_filename

    options = (
        Option("pretrained", bool, False,
               f"Load torchvision ImageNet weights into the encoder ({weights_filename(arch)}, torch hub cache). "
               "Off by default: it needs that file or a download. The lesson trains with it on."),
        Option("blur", bool, True, "Blur after each pixel-shuffle upsampling (fewer checkerboard artifacts)."),
        Option("self_attention", bool, True, "SAGAN self-attention in the third decoder block from the end."),
        Option("norm_type", str, "weight", "Normalisation of the decoder convolutions.",
               choices=("weight", "batch", "spectral", "none")),
        Option("y_range", tuple, (-3.0, 3.0), "Output range (low, high) of the final sigmoid (normalised units).",
               length=2, minimum=-100.0, maximum=100.0),
        Option("n_out", int, 3, "Output channels.", minimum=1, maximum=16),
        Option("last_cross", bool, True, "Concatenate the input before the final ResBlock."),
        Option("scale", int, 2, "Task scale: output pixels per input pixel (input is upsampled first).",
               choices=(1, 2, 3, 4)),
    )

    def facts(o: dict[str, Any]) -> dict[str, Any]:
        return dict(in_channels=3, out_channels=o["n_out"], scale=o["scale"], model_scale=1, size_multiple=32,
                    mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    uses_pretrained=weights_filename(arch) if o["pretrained"] else None)

    @register(f"unet-{arch}", kind="restorer", options=options, facts=facts,
              description=f"fastai DynamicUnet on a {_PRETTY[arch]} encoder"
              + (" (lesson 7's generator)" if arch == "resnet34" else ""))
    def factory(**opts: Any) -> DynamicUnet:
        return build_unet(arch, **opts)


for _arch in ENCODERS:
    _register(_arch)
