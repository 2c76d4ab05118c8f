"""Building blocks of the lesson-7 models, after fastai v2 (fastai/layers.py), in plain PyTorch.

Norm types are strings: ``"batch"``, ``"batch_zero"`` (BatchNorm with gamma = 0), ``"weight"``
(weight norm), ``"spectral"`` (spectral norm) and ``"none"``. Weight and spectral norm use the
``torch.nn.utils.parametrizations`` versions, so their state-dict keys are
``<conv>.parametrizations.weight.original0/original1`` (weight norm) and
``<conv>.parametrizations.weight.original`` and ``...weight.0._u/_v`` (spectral norm).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize

NORM_TYPES = ("batch", "batch_zero", "weight", "spectral", "none")


def check_norm_type(norm_type: Optional[str]) -> str:
    norm_type = "none" if norm_type is None else norm_type
    if norm_type not in NORM_TYPES:
        raise ValueError(f"norm_type must be one of {NORM_TYPES}, got {norm_type!r}")
    return norm_type


def batchnorm(nf: int, ndim: int = 2, zero: bool = False) -> nn.Module:
    """BatchNorm initialised as fastai does: gamma 1 (0 if ``zero``), beta 1e-3."""
    bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[ndim](nf)
    with torch.no_grad():
        bn.bias.fill_(1e-3)
        bn.weight.fill_(0.0 if zero else 1.0)
    return bn


_SpectralNormBase = getattr(parametrizations, "_SpectralNorm", None)

if _SpectralNormBase is not None:

    class _SpectralNorm(_SpectralNormBase):  # type: ignore[misc, valid-type]
        """torch's spectral-norm parametrization, minus the power iterations on the meta device
        (meta builds only need shapes; torch runs 15 iterations of slow meta ops per conv)."""

        def _power_method(self, weight_mat: torch.Tensor, n_power_iterations: int) -> None:
            if weight_mat.is_meta:
                return
            super()._power_method(weight_mat, n_power_iterations)


def spectral_norm(module: nn.Module) -> nn.Module:
    """``parametrizations.spectral_norm(module)``; cheap when the module lives on the meta device."""
    if _SpectralNormBase is None or not module.weight.is_meta:
        return parametrizations.spectral_norm(module)
    dim = 1 if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, "weight", _SpectralNorm(module.weight, 1, dim, 1e-12))
    return module


def _conv_cls(ndim: int, transpose: bool) -> type[nn.Module]:
    if transpose:
        return {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[ndim]
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[ndim]


def _is_relu_like(act: Optional[nn.Module]) -> bool:
    return isinstance(act, (nn.ReLU, nn.ReLU6, nn.LeakyReLU))


def init_default(m: nn.Module, func: Callable = nn.init.kaiming_normal_) -> nn.Module:
    """``func`` on a plain ``weight`` and zero bias (fastai ``init_default``).

    A weight- or spectral-normed weight is computed from its parametrization, so (as in fastai,
    where such a ``weight`` is recomputed before each forward) only the bias is reset.
    """
    with torch.no_grad():
        w = getattr(m, "weight", None)
        if func is not None and isinstance(w, nn.Parameter) and not parametrize.is_parametrized(m, "weight"):
            func(w)
        b = getattr(m, "bias", None)
        if isinstance(b, torch.Tensor):
            b.zero_()
    return m


_NORM_CLASSES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
                 nn.InstanceNorm3d, nn.LayerNorm, nn.GroupNorm)


def apply_init(m: nn.Module, func: Callable = nn.init.kaiming_normal_) -> None:
    """``init_default`` on every trainable non-norm leaf-or-not module with a weight (fastai ``apply_init``)."""
    for sub in m.modules():
        if isinstance(sub, _NORM_CLASSES):
            continue
        if any(p.requires_grad for p in sub.parameters(recurse=False)) or parametrize.is_parametrized(sub):
            init_default(sub, func)


class ConvLayer(nn.Sequential):
    """Conv (``ni`` -> ``nf``) + norm + activation, as fastai's ``ConvLayer``.

    Order is conv, BatchNorm, activation (``bn_1st``); weight/spectral norm wrap the conv itself.
    ``init="auto"`` uses kaiming-uniform for ReLU-like activations and PyTorch's default
    otherwise; a callable ``init(weight)`` is applied to the raw weight before any norm wrapping
    (ICNR uses it). The bias, when there is one, starts N(0, ``bias_std``) (0 when ``bias_std`` is 0).
    ``xtra`` (e.g. SelfAttention) is appended last.
    """

    def __init__(
        self,
        ni: int,
        nf: int,
        ks: int = 3,
        stride: int = 1,
        padding: Optional[int] = None,
        bias: Optional[bool] = None,
        ndim: int = 2,
        norm_type: Optional[str] = "batch",
        bn_1st: bool = True,
        act_cls: Optional[Callable[[], nn.Module]] = nn.ReLU,
        transpose: bool = False,
        init: str | Callable | None = "auto",
        xtra: Optional[nn.Module] = None,
        bias_std: Optional[float] = 0.01,
        **kwargs,
    ) -> None:
        norm_type = check_norm_type(norm_type)
        if padding is None:
            padding = (ks - 1) // 2 if not transpose else 0
        bn = norm_type in ("batch", "batch_zero")
        if bias is None:
            bias = not bn
        conv = _conv_cls(ndim, transpose)(ni, nf, kernel_size=ks, bias=bias, stride=stride, padding=padding, **kwargs)
        act = None if act_cls is None else act_cls()
        with torch.no_grad():
            if conv.bias is not None and bias_std is not None:
                if bias_std != 0:
                    conv.bias.normal_(0.0, bias_std)
                else:
                    conv.bias.zero_()
            if init == "auto":
                if _is_relu_like(act):
                    nn.init.kaiming_uniform_(conv.weight)
            elif callable(init):
                init(conv.weight)
        if norm_type == "weight":
            conv = parametrizations.weight_norm(conv)
        elif norm_type == "spectral":
            conv = spectral_norm(conv)
        layers: list[nn.Module] = [conv]
        act_bn: list[nn.Module] = []
        if act is not None:
            act_bn.append(act)
        if bn:
            act_bn.append(batchnorm(nf, ndim, zero=norm_type == "batch_zero"))
        if bn_1st:
            act_bn.reverse()
        layers += act_bn
        if xtra is not None:
            layers.append(xtra)
        super().__init__(*layers)


class MergeLayer(nn.Module):
    """Merge a block's output with the block's input: add, or concatenate if ``dense``."""

    def __init__(self, dense: bool = False) -> None:
        super().__init__()
        self.dense = dense

    def forward(self, x: torch.Tensor, orig: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, orig], dim=1) if self.dense else x + orig

    def extra_repr(self) -> str:
        return f"dense={self.dense}"


class SequentialEx(nn.Module):
    """Sequential whose MergeLayers also receive the block's input (fastai ``SequentialEx``).

    Instead of fastai's ``tensor.orig`` attribute, the input is passed to MergeLayers explicitly.
    """

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x
        for layer in self.layers:
            res = layer(res, x) if isinstance(layer, MergeLayer) else layer(res)
        return res

    def __getitem__(self, i: int) -> nn.Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)


def res_block(nf: int, dense: bool = False, norm_type: str = "batch", bottle: bool = False, **conv_kwargs) -> SequentialEx:
    """Two ConvLayers and a merge with the input (fastai ``res_block``; ``DenseResBlock`` if ``dense``).

    Non-dense with batch norm zero-initialises the second BatchNorm so the block starts as the
    identity. Dense concatenates: the output has ``2 * nf`` channels.
    """
    norm_type = check_norm_type(norm_type)
    norm2 = "batch_zero" if (not dense and norm_type == "batch") else norm_type
    nf_inner = nf // 2 if bottle else nf
    return SequentialEx(
        ConvLayer(nf, nf_inner, norm_type=norm_type, **conv_kwargs),
        ConvLayer(nf_inner, nf, norm_type=norm2, **conv_kwargs),
        MergeLayer(dense),
    )


class ResBlock(nn.Module):
    """fastai v2 ``ResBlock(expansion, ni, nf, stride)``: ``act(convpath(x) + idpath(x))``.

    ``expansion == 1``: two ks x ks convs (the second without activation, BatchNorm with gamma 0
    when ``norm_type`` is batch). ``expansion > 1``: bottleneck 1x1 - ks x ks - 1x1. The identity
    path gets a 1x1 ConvLayer (batch norm, as in fastai) when channels change and an average pool
    when ``stride != 1``.
    """

    def __init__(
        self,
        expansion: int,
        ni: int,
        nf: int,
        stride: int = 1,
        groups: int = 1,
        nh1: Optional[int] = None,
        nh2: Optional[int] = None,
        norm_type: str = "batch",
        act_cls: Callable[[], nn.Module] = nn.ReLU,
        ndim: int = 2,
        ks: int = 3,
        pool_first: bool = True,
        **kwargs,
    ) -> None:
        super().__init__()
        norm_type = check_norm_type(norm_type)
        norm2 = "batch_zero" if norm_type == "batch" else norm_type
        nh2 = nf if nh2 is None else nh2
        nh1 = nh2 if nh1 is None else nh1
        nf, ni = nf * expansion, ni * expansion
        k0 = dict(norm_type=norm_type, act_cls=act_cls, ndim=ndim, **kwargs)
        k1 = dict(norm_type=norm2, act_cls=None, ndim=ndim, **kwargs)
        if expansion == 1:
            convpath = [ConvLayer(ni, nh2, ks, stride=stride, groups=groups, **k0),
                        ConvLayer(nh2, nf, ks, **k1)]
        else:
            convpath = [ConvLayer(ni, nh1, 1, **k0),
                        ConvLayer(nh1, nh2, ks, stride=stride, groups=groups, **k0),
                        ConvLayer(nh2, nf, 1, **k1)]
        self.convpath = nn.Sequential(*convpath)
        idpath: list[nn.Module] = []
        if ni != nf:
            idpath.append(ConvLayer(ni, nf, 1, act_cls=None, ndim=ndim, **kwargs))
        if stride != 1:
            pool = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[ndim](stride, ceil_mode=True)
            idpath.insert(0 if pool_first else 1, pool)
        self.idpath = nn.Sequential(*idpath)
        self.act = act_cls(inplace=True) if act_cls is nn.ReLU else act_cls()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convpath(x) + self.idpath(x))


def icnr_init_(weight: torch.Tensor, scale: int = 2, init: Callable = nn.init.kaiming_normal_) -> torch.Tensor:
    """ICNR (Aitken et al. 2017) in place: the conv feeding ``PixelShuffle(scale)`` starts as
    a nearest-neighbour upsampler (the ``scale**2`` sub-pixel channels of each output channel share
    one kernel)."""
    out_c, in_c, h, w = weight.shape
    if out_c % (scale * scale):
        raise ValueError(f"ICNR needs out channels ({out_c}) divisible by scale**2 ({scale * scale})")
    with torch.no_grad():
        base = init(weight.new_zeros(out_c // (scale * scale), in_c, h, w))
        weight.copy_(base.repeat_interleave(scale * scale, dim=0))
    return weight


class PixelShuffle_ICNR(nn.Sequential):  # noqa: N801 (fastai's name)
    """Upsample by ``scale`` from ``ni`` to ``nf`` channels (default ``ni``): 1x1 ConvLayer with ICNR
    init, ``PixelShuffle``, and optionally fastai's blur (``ReplicationPad2d((1,0,1,0))`` +
    ``AvgPool2d(2, stride=1)``) against checkerboard artifacts."""

    def __init__(self, ni: int, nf: Optional[int] = None, scale: int = 2, blur: bool = False,
                 norm_type: Optional[str] = "weight", act_cls: Optional[Callable[[], nn.Module]] = nn.ReLU) -> None:
        nf = ni if nf is None else nf
        layers: list[nn.Module] = [
            ConvLayer(ni, nf * scale * scale, ks=1, norm_type=norm_type, act_cls=act_cls, bias_std=0,
                      init=lambda w: icnr_init_(w, scale)),
            nn.PixelShuffle(scale),
        ]
        if blur:
            layers += [nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1)]
        super().__init__(*layers)


class SelfAttention(nn.Module):
    """SAGAN self-attention over all positions (fastai ``SelfAttention``); ``gamma`` starts at 0,
    so the layer is the identity at init. Query/key/value are spectral-normed 1x1 Conv1d.

    fastai computes ``softmax(f^T g, dim=1)`` and ``h @ beta``: position j attends to positions i
    with weights softmax_i(f_i . g_j), unscaled. That is attention with queries g, keys f, values h
    and scale 1, computed here with ``scaled_dot_product_attention`` (memory-efficient kernels).
    """

    def __init__(self, n_channels: int) -> None:
        super().__init__()
        c8 = n_channels // 8

        def conv(n_out: int) -> ConvLayer:
            return ConvLayer(n_channels, n_out, ks=1, ndim=1, norm_type="spectral", act_cls=None, bias=False)

        self.query, self.key, self.value = conv(c8), conv(c8), conv(n_channels)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.chunk_inference = True  # False: one N x N map at inference too, as fastai computes it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape
        x = x.reshape(size[0], size[1], -1)  # (B, C, N)
        f, g, h = self.query(x), self.key(x), self.value(x)
        q, k, v = g.transpose(1, 2), f.transpose(1, 2), h.transpose(1, 2)
        if (self.chunk_inference and not torch.is_grad_enabled() and q.shape[1] > ATTENTION_CHUNK_MIN
                and not _tracing()):
            o = chunked_attention(q, k, v)
        else:
            o = F.scaled_dot_product_attention(q, k, v, scale=1.0)
        return (self.gamma * o.transpose(1, 2) + x).reshape(size)


# Inference over more positions than this runs attention in query chunks (see chunked_attention).
ATTENTION_CHUNK_MIN = 2048
_CHUNK_ELEMENTS = 1 << 22  # logits per chunk: 16 MB in float32


def _tracing() -> bool:
    compiling = getattr(torch.compiler, "is_compiling", lambda: False)()
    return compiling or torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()


def chunked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``softmax(q k^T) v`` (scale 1) for (B, N, d) queries/keys and (B, N, c) values, a block of
    queries at a time: memory linear in N (no N x N map), and on the CPU faster than the
    math kernel that ``scaled_dot_product_attention`` falls back to when the values' width
    differs from the keys'. Logits and softmax are computed in float32 whatever the input
    dtype (in bfloat16 the unscaled logits of SAGAN attention lose too much); the weighted sum
    runs in the values' dtype. Used for inference; training keeps the fused kernel's backward.
    """
    b, n, _d = q.shape
    v = v.contiguous()  # once: SelfAttention hands a transposed view, which every chunk's matmul would copy
    out = torch.empty(b, n, v.shape[2], dtype=v.dtype, device=v.device)
    kt = k.float().transpose(1, 2)
    step = max(64, _CHUNK_ELEMENTS // max(n, 1))
    for s in range(0, n, step):
        logits = torch.matmul(q[:, s:s + step].float(), kt)
        w = torch.softmax(logits, dim=-1).to(v.dtype)
        out[:, s:s + step] = torch.matmul(w, v)
    return out


def self_attention_reference(sa: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    """fastai's literal formula (bmm + softmax over dim 1), for tests and small inputs."""
    size = x.shape
    x = x.reshape(size[0], size[1], -1)
    f, g, h = sa.query(x), sa.key(x), sa.value(x)
    beta = F.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)
    return (sa.gamma * torch.bmm(h, beta) + x).reshape(size)


class SigmoidRange(nn.Module):
    """``sigmoid(x) * (high - low) + low``."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = float(low), float(high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * (self.high - self.low) + self.low

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"


class Flatten(nn.Module):
    """``x.view(batch, -1)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


class AddChannels(nn.Module):
    """Append ``n_dim`` singleton dimensions: (B, C) -> (B, C, 1, 1)."""

    def __init__(self, n_dim: int) -> None:
        super().__init__()
        self.n_dim = n_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape, *([1] * self.n_dim))


def bake_parametrizations(model: nn.Module) -> nn.Module:
    """Replace every weight/spectral-norm parametrization by its current plain weight, in place.

    For inference and export: the forward then no longer recomputes normalised weights (ONNX
    cannot export spectral norm's ``vdot``). Outputs are unchanged (spectral norm as in eval mode).
    State-dict keys change (plain ``weight``), so save checkpoints from the un-baked model.
    Unlike ``parametrize.remove_parametrizations``, this leaves deep copies of the model intact
    (they share the injected ``Parametrized*`` class, which that function edits).
    """
    was_training = model.training
    model.eval()
    for m in list(model.modules()):
        if not parametrize.is_parametrized(m):
            continue
        with torch.no_grad():
            values = {name: getattr(m, name).detach().clone() for name in m.parametrizations.keys()}
        del m._modules["parametrizations"]
        m.__class__ = m.__class__.__bases__[0]  # the class the parametrization was injected over
        for name, v in values.items():
            m.register_parameter(name, nn.Parameter(v))
    model.train(was_training)
    return model
