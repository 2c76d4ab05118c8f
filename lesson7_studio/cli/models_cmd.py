"""``lesson7-studio models``: list the model registry, describe one model, or describe a model file."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the models, or describe one",
        description="Without NAME: list every registered model (name, kind, parameters, description). "
        "With NAME: describe that model with the given options. With FILE (any model file restore "
        "can load: a .safetensors checkpoint, an .onnx export, a community .pth/.pt/.ckpt): its "
        "architecture, scale, parameters, tiling rules and precisions.",
    )
    p.add_argument("name", nargs="?", metavar="NAME|FILE", help="model to describe, e.g. unet-resnet34, or a model file")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. --option self_attention=false (repeatable)")
    p.set_defaults(func=run_models)


def format_params(n: int) -> str:
    """41413534 -> '41.4M', 52940 -> '52.9K'."""
    if n >= 1e9:
        return f"{n / 1e9:.1f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return str(n)


def _parse_options(pairs: list[str]) -> dict[str, str]:
    from lesson7_studio.core.errors import ModelError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ModelError(f"Option '{pair}' must look like KEY=VALUE.")
        out[key.strip()] = value.strip()
    return out


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header) - 1)]
    lines = []
    for r in [header] + rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths)] + [r[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _describe_text(info, options) -> str:
    lines = [
        f"{info.name}: {info.description}",
        f"  kind          {info.kind}",
        f"  parameters    {info.params:,} ({format_params(info.params)})",
        f"  channels      {info.in_channels} in, {info.out_channels} out",
        f"  scale         {info.scale} (network upsamples x{info.model_scale})",
        f"  size multiple {info.size_multiple}",
        f"  normalisation {'mean ' + str(info.mean) + ', std ' + str(info.std) if info.mean else 'none (inputs in [0, 1])'}",
    ]
    if info.kind == "language-model":  # token ids in, next-token logits out: no image facts
        lines[3:7] = [f"  vocabulary    {info.in_channels} tokens in, logits over {info.out_channels} out"]
    elif info.kind == "classifier":
        lines[3:7] = [f"  input         {info.in_channels}-channel 28x28 images -> {info.out_channels} classes "
                      "(normalised with the training set's mean and std)"]
    if info.uses_pretrained:
        lines.append(f"  weights       {info.uses_pretrained}")
    lines.append("  options:")
    for o in options:
        extra = f"; one of {', '.join(map(str, o.choices))}" if o.choices else ""
        lines.append(f"    {o.name} = {info.options[o.name]!r}  ({o.type.__name__}, default {o.default!r}{extra}) {o.help}")
    return "\n".join(lines)


def _file_text(d: dict) -> str:
    t = d["tiling"]
    params = d["parameters"]
    tiles = f"sides a multiple of {t['input_multiple']} px (network input: of {t['size_multiple']})"
    if t["min_tile"] > 1:
        tiles += f", at least {t['min_tile']} px"
    if t["square_tiles"]:
        tiles += ", square"
    if "any_size" in t:
        tiles += "; any size" if t["any_size"] else "; one fixed size"
        tiles += (", same tiles as the PyTorch model" if t.get("memory_estimate")
                  else ", fixed 256 px tiles (no memory estimate in the file)")
    lines = [
        f"{d['file']}: {d['architecture']} ({d['format']})",
        f"  description   {d['description']}" if d["description"] else None,
        f"  scale         x{d['scale']} (network upsamples x{d['network_scale']})",
        f"  parameters    {params:,} ({format_params(params)})" if params is not None else "  parameters    unknown",
        f"  tiles         {tiles}",
        f"  precisions    {', '.join(d['precisions'])}"
        + ("" if d["format"] != "onnx" else " (the file runs as exported; --precision does not apply)"),
    ]
    if d.get("recipe"):
        lines.append(f"  trained with  recipe {d['recipe']}")
    for key, v in (d.get("precision_auto_verdicts") or {}).items():
        verdict = "used" if v.get("ok") else "not used"
        psnr = v.get("psnr")
        lines.append(f"  auto check    {key}: {verdict}" + (f" ({psnr:.1f} dB against fp32)" if psnr else ""))
    return "\n".join(line for line in lines if line)


def _is_model_file(name: str) -> bool:
    """A path (an existing file, or a name with a model file's suffix), not a registry name."""
    from pathlib import Path

    from lesson7_studio.core.project import MODEL_SUFFIXES

    p = Path(name).expanduser()
    return p.is_file() or p.suffix.lower() in MODEL_SUFFIXES


def _describe_file(args: argparse.Namespace) -> int:
    from lesson7_studio.core.errors import ModelError
    from lesson7_studio.core.model_file import describe_model_file

    if args.option:
        raise ModelError("--option applies to a registry NAME; a model file says its own options.")
    d = describe_model_file(args.name)
    print(json.dumps(d, indent=2, default=str) if args.json else _file_text(d))
    sys.stdout.flush()
    return 0


def run_models(args: argparse.Namespace) -> int:
    from lesson7_studio.core import models

    opts = _parse_options(args.option)
    if args.name is None:
        if opts:
            from lesson7_studio.core.errors import ModelError

            raise ModelError("--option needs a model NAME.")
        infos = [models.describe(n) for n in models.names()]
        if args.json:
            print(json.dumps([i.to_dict() for i in infos], indent=2))
        else:
            rows = [[i.name, i.kind, format_params(i.params), i.description] for i in infos]
            print(_table(rows, ["NAME", "KIND", "PARAMS", "DESCRIPTION"]))
        return 0
    if _is_model_file(args.name):
        return _describe_file(args)
    info = models.describe(args.name, **opts)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        print(_describe_text(info, models.options_of(args.name)))
    sys.stdout.flush()
    return 0
