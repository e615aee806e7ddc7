"""`sora models`: the model catalogue sora ships (what each model takes, its price)."""

from __future__ import annotations

from typing import Any

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import open_context, out
from sora_cli.cli.render import json_line
from sora_cli.domain.catalogue import ModelInfo, models
from sora_cli.domain.providers import BUILTIN
from sora_cli.domain.text import clean
from sora_cli.errors import InvalidInput


@app.command("models")
def models_cmd(
    tctx: typer.Context,
    provider: str = typer.Option(None, "--provider", metavar="P",
                                 help=f"Only this provider's ({', '.join(BUILTIN)})."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per model per line."),
) -> None:
    """The models sora knows, by provider: what --seconds and --size they take, their
    image field, their price (with the day it was read) and what sora can do with
    them. Any other model of a provider can be used too, with --param for its fields.

    \b
    sora models --provider fal
    sora models --json | jq -r 'select(.price.usd_per_second) | .model'
    """
    names = list(BUILTIN) if provider is None else [provider.strip().lower()]
    if names[0] not in BUILTIN:
        raise InvalidInput(f"--provider must be one of {', '.join(BUILTIN)} (got {provider!r})")
    settings = open_context(tctx).settings
    aliases: dict[str, list[str]] = {}
    for name, target in settings.alias_map().items():
        aliases.setdefault(target, []).append(name)
    rows = [model_dict(info, aliases.get(info.ref, [])) for n in names for info in models(n)]
    if as_json:
        for row in rows:
            out(json_line(row))
        return
    head = ("PROVIDER", "MODEL", "ALIASES", "SECONDS", "SIZES", "PRICE", "CAN")
    cells = [(r["provider"], r["model"], ",".join(r["aliases"]) or "-", _seconds(r),
              _sizes(r), _price(r), ",".join(r["capabilities"])) for r in rows]
    widths = [max(len(c[i]) for c in (head, *cells)) for i in range(len(head))]
    for line in (head, *cells):
        out("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def model_dict(info: ModelInfo, config_aliases: list[str]) -> dict[str, Any]:
    price = info.price
    caps = sorted(BUILTIN[info.provider].capabilities)
    if info.image_field is None:
        caps = [c for c in caps if c != "image_input"]
    return {
        "provider": info.provider, "model": info.id, "ref": info.ref, "kind": info.kind,
        "aliases": [*info.aliases, *config_aliases],
        "seconds": None if info.seconds is None else {
            "field": info.seconds.field, "values": list(info.seconds.values) or None,
            "min": info.seconds.minimum or None, "max": info.seconds.maximum or None,
            "default": info.seconds.default},
        "sizes": info.size_list(), "aspect_ratio_field": info.aspect_field,
        "resolution_field": info.resolution_field, "image_field": info.image_field,
        "image_required": info.image_required,
        "price": None if price is None else {
            "usd_per_second": price.usd_per_second, "usd_per_video": price.usd_per_video,
            "by_resolution": {str(k): v for k, v in price.by_resolution.items()} or None,
            "read": price.read, "note": price.note or None},
        "capabilities": caps,
    }


def _seconds(row: dict[str, Any]) -> str:
    s = row["seconds"]
    if s is None:
        return "-"
    return ",".join(map(str, s["values"])) if s["values"] else f"{s['min']}-{s['max']}"


def _sizes(row: dict[str, Any]) -> str:
    sizes = row["sizes"]
    return clean(",".join(sizes[:4]) + (",..." if len(sizes) > 4 else "")) or "-"


def _price(row: dict[str, Any]) -> str:
    p = row["price"]
    if p is None:
        return "unknown"
    if p["usd_per_video"] is not None:
        text = f"${p['usd_per_video']:.2f}/video"
    elif p["usd_per_second"] is not None:
        rate = p["usd_per_second"]
        text = f"${rate:.2f}/s" if round(rate * 100, 6).is_integer() else f"${rate:.3f}/s"
    else:
        return "unknown"
    return text + (f" ({p['read']})" if p["read"] else "")
