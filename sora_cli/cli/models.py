"""`sora models`: the model catalogue sora ships (what each model takes, its price)."""

from __future__ import annotations

from typing import Any

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import note, open_context, out
from sora_cli.cli.completing import complete_provider
from sora_cli.cli.render import json_line
from sora_cli.domain.catalogue import ModelInfo, models
from sora_cli.domain.providers import BUILTIN
from sora_cli.domain.text import clean
from sora_cli.errors import InvalidInput
from sora_cli.services.providers import ProviderRow


@app.command("models")
def models_cmd(
    tctx: typer.Context,
    provider: str = typer.Option(None, "--provider", metavar="P",
                                 help=f"Only this provider's ({', '.join(BUILTIN)}, a named "
                                 "endpoint or a plug-in).", autocompletion=complete_provider),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per model per line."),
) -> None:
    """The models sora knows, by provider: what --seconds and --size they take, their
    image field, their price (with the day it was read) and what sora can do with
    them. Any other model of a provider can be used too, with --param for its fields.
    Named endpoints (`[providers.NAME] api = "openai"` in the config) and plug-in
    providers are listed too, with the models their config or plug-in names (`*`: any).

    \b
    sora models --provider fal
    sora models --provider omni
    sora models --json | jq -r 'select(.price.usd_per_second) | .model'
    """
    from sora_cli.services.providers import extra_providers

    settings = open_context(tctx).settings
    extras = extra_providers(settings)
    for extra in extras:
        for problem in extra.problems:
            note(problem)
    known = [*BUILTIN, *(r.name for r in extras if not r.problems)]
    names = list(known) if provider is None else [provider.strip().lower()]
    if names[0] not in known:
        raise InvalidInput(f"--provider must be one of {', '.join(known)} (got {provider!r})")
    aliases: dict[str, list[str]] = {}
    for name, target in settings.alias_map().items():
        aliases.setdefault(target, []).append(name)
    rows = [model_dict(info, aliases.get(info.ref, [])) for n in names if n in BUILTIN
            for info in models(n)]
    rows += [r for extra in extras if extra.name in names and not extra.problems
             for r in extra_dicts(extra, aliases)]
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


def extra_dicts(row: ProviderRow, aliases: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The rows of a named endpoint or a plug-in provider: one per model it names, or
    one `*` row (any model)."""
    out = []
    for model in row.models or ("*",):
        ref = f"{row.name}:{model}"
        out.append({
            "provider": row.name, "model": clean(model), "ref": clean(ref), "kind": row.kind,
            "aliases": aliases.get(ref, []),
            "seconds": {"field": "seconds", "values": list(row.seconds), "min": None,
                        "max": None, "default": None} if row.seconds else None,
            "sizes": list(row.sizes), "aspect_ratio_field": None, "resolution_field": None,
            "image_field": "input_reference" if row.kind == "endpoint" else None,
            "image_required": False, "price": None, "capabilities": list(row.capabilities),
            "base_url": row.base_url, "description": clean(row.description)})
    return out


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
