"""``lesson7-studio models``: list the model registry, or describe one model."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the models, or describe one",
        description="Without NAME: list every registered model (name, kind, parameters, description). "
        "With NAME: describe that model with the given options.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="model to describe, e.g. unet-resnet34")
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
    if info.uses_pretrained:
        lines.append(f"  weights       {info.uses_pretrained}")
    lines.append("  options:")
    for o in options:
        extra = f"; one of {', '.join(map(str, o.choices))}" if o.choices else ""
        lines.append(f"    {o.name} = {info.options[o.name]!r}  ({o.type.__name__}, default {o.default!r}{extra}) {o.help}")
    return "\n".join(lines)


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
    info = models.describe(args.name, **opts)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        print(_describe_text(info, models.options_of(args.name)))
    sys.stdout.flush()
    return 0
