"""The model catalogue: what each provider's video models take, and what they cost.

The facts are data files shipped in the package (`sora_cli/providers/catalogue/
<provider>.toml`, described at the top of fal.toml); `parse_catalogue` turns one into
`ModelInfo`s, a pure function, and `models(provider)` reads the file once per process.
The rest maps a request onto a model's own input fields: `--seconds` onto its
duration field (written as it wants it: "5", "8s" or 5), `--size WxH` onto its aspect
ratio (W:H reduced) and its resolution (by the short side), or onto an exact size
field (Runway's ratio "1280:720"), and refuses, naming what the model takes, any value
it does not take.

The OpenAI contract's two models keep their rules in jobs.py (sizes, seconds, prices);
`openai_models()` describes them in the same shape for `sora models`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from sora_cli.domain.jobs import ALLOWED_SECONDS, SIZES_720P, SIZES_PRO, Job, estimated_cost
from sora_cli.errors import InvalidInput

ENCODINGS: Final = ("string", "string_s", "integer")
# the providers with a data file
SHIPPED: Final = ("fal", "replicate", "runway", "luma", "minimax", "vertex", "kling")


@dataclass(frozen=True)
class SecondsField:
    field: str
    values: tuple[int, ...]  # empty: any whole number from `minimum` to `maximum`
    minimum: int = 0
    maximum: int = 0
    default: int | None = None
    encoding: str = "string"

    def takes(self, seconds: int) -> bool:
        if self.values:
            return seconds in self.values
        return self.minimum <= seconds <= self.maximum

    def describe(self) -> str:
        if self.values:
            return ", ".join(str(v) for v in self.values)
        return f"{self.minimum} to {self.maximum}"

    def encode(self, seconds: int) -> Any:
        if self.encoding == "integer":
            return seconds
        return f"{seconds}s" if self.encoding == "string_s" else str(seconds)


@dataclass(frozen=True)
class Price:
    usd_per_second: float | None = None
    usd_per_video: float | None = None
    by_resolution: Mapping[int, float] = field(default_factory=dict)  # short side -> rate
    read: str | None = None  # the day the price was read
    note: str = ""


@dataclass(frozen=True)
class ModelInfo:
    provider: str
    id: str
    kind: str = "text-to-video"
    aliases: tuple[str, ...] = ()
    seconds: SecondsField | None = None
    aspect_field: str | None = None
    aspects: tuple[str, ...] = ()
    default_aspect: str | None = None
    resolution_field: str | None = None
    resolutions: Mapping[int, str] = field(default_factory=dict)  # short side -> value
    default_resolution: int | None = None
    image_field: str | None = None
    image_required: bool = False
    price: Price | None = None
    sizes: tuple[str, ...] = ()  # exact WxH sizes (the OpenAI contract's; a size field's)
    # A field that takes the exact size, written W:H (Runway's ratio); its sizes above.
    size_field: str | None = None
    image_sizes: tuple[str, ...] = ()  # sizes it takes only with an image
    default_size: str | None = None  # sent when no --size is given (a required field)
    max_seconds: Mapping[int, int] = field(default_factory=dict)  # short side -> longest

    def takes_seconds_at(self, side: int | None, seconds: int) -> bool:
        """False for a length the model does not make at this resolution (MiniMax's
        1080P is 6 s only)."""
        limit = self.max_seconds.get(side or 0)
        return limit is None or seconds <= limit

    @property
    def ref(self) -> str:
        return self.id if self.provider == "openai" else f"{self.provider}:{self.id}"

    def size_list(self) -> list[str]:
        """Every `--size` this model takes, as WxH (empty: it takes none)."""
        if self.sizes:
            return list(self.sizes)
        sides = sorted(self.resolutions) or ([720] if self.aspects else [])
        out: list[str] = []
        for side in sides:
            for aspect in self.aspects or ("16:9", "9:16"):
                out.append(_size_for(aspect, side))
        return out

    def cost(self, size: str, seconds: int) -> float | None:
        """Estimated USD for one video with these settings, or None (no known price)."""
        if self.provider == "openai":
            return estimated_cost(self.id, size, seconds)
        if self.price is None:
            return None
        side = _short_side(size) if size else self.default_resolution
        if self.price.usd_per_video is not None:
            return round(self.price.by_resolution.get(side or 0, self.price.usd_per_video), 4)
        if self.price.usd_per_second is None or seconds <= 0:
            return None
        rate = self.price.by_resolution.get(side or 0, self.price.usd_per_second)
        return round(rate * seconds, 4)


# --- the data files ---------------------------------------------------------------------


def parse_catalogue(provider: str, data: Mapping[str, Any]) -> tuple[ModelInfo, ...]:
    """The models of one provider's catalogue file (already parsed TOML)."""
    items = data.get("models")
    if not isinstance(items, list):
        raise ValueError(f"{provider} catalogue: no [[models]]")
    return tuple(_model(provider, item) for item in items)


def _model(provider: str, item: Any) -> ModelInfo:
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
        raise ValueError(f"{provider} catalogue: a model without an id: {item!r}")
    seconds = aspect = resolution = image = price = None
    if isinstance(s := item.get("seconds"), Mapping):
        if s.get("as", "string") not in ENCODINGS:
            raise ValueError(f"{item['id']}: seconds.as must be one of {ENCODINGS}")
        seconds = SecondsField(str(s["field"]), tuple(int(v) for v in s.get("values", ())),
                               int(s.get("min", 0)), int(s.get("max", 0)),
                               int(s["default"]) if "default" in s else None,
                               str(s.get("as", "string")))
    if isinstance(a := item.get("aspect_ratio"), Mapping):
        aspect = a
    if isinstance(r := item.get("resolution"), Mapping):
        resolution = r
    if isinstance(i := item.get("image"), Mapping):
        image = i
    size: Mapping[str, Any] = item["size"] if isinstance(item.get("size"), Mapping) else {}
    if isinstance(p := item.get("price"), Mapping):
        price = Price(_float(p.get("usd_per_second")), _float(p.get("usd_per_video")),
                      {int(k): float(v) for k, v in dict(p.get("by_resolution", {})).items()},
                      str(p["read"]) if "read" in p else None, str(p.get("note", "")))
    return ModelInfo(
        provider=provider, id=item["id"], kind=str(item.get("kind", "text-to-video")),
        aliases=tuple(str(x) for x in item.get("aliases", ())), seconds=seconds,
        aspect_field=str(aspect["field"]) if aspect else None,
        aspects=tuple(str(v) for v in aspect.get("values", ())) if aspect else (),
        default_aspect=str(aspect["default"]) if aspect and "default" in aspect else None,
        resolution_field=str(resolution["field"]) if resolution else None,
        resolutions={int(k): str(v) for k, v in dict(resolution.get("values", {})).items()}
        if resolution else {},
        default_resolution=int(resolution["default"])
        if resolution and "default" in resolution else None,
        image_field=str(image["field"]) if image else None,
        image_required=bool(image.get("required", False)) if image else False,
        price=price,
        sizes=tuple(str(v) for v in size.get("values", ())),
        size_field=str(size["field"]) if size else None,
        image_sizes=tuple(str(v) for v in size.get("image_only", ())),
        default_size=str(size["default"]) if "default" in size else None,
        max_seconds={int(k): int(v) for k, v in dict(resolution.get("max_seconds", {})).items()}
        if resolution else {},
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@cache
def models(provider: str) -> tuple[ModelInfo, ...]:
    """A provider's catalogue: the shipped data file, read once per process."""
    if provider == "openai":
        return openai_models()
    if provider not in SHIPPED:
        return ()
    import tomllib
    from importlib.resources import files

    # A data directory of the package (no __init__: reading it imports no provider code).
    text = (files("sora_cli") / "providers" / "catalogue" / f"{provider}.toml").read_text()
    return parse_catalogue(provider, tomllib.loads(text))


def openai_models() -> tuple[ModelInfo, ...]:
    """The Videos contract's models, described from the rules in jobs.py."""
    seconds = SecondsField("seconds", ALLOWED_SECONDS, default=4)
    note = "as OpenAI published it; gateways set their own"
    return (
        ModelInfo("openai", "sora-2", seconds=seconds, sizes=SIZES_720P,
                  image_field="input_reference", price=Price(usd_per_second=0.10, note=note)),
        ModelInfo("openai", "sora-2-pro", seconds=seconds, sizes=SIZES_PRO,
                  image_field="input_reference", price=Price(
                      usd_per_second=0.30, note=f"$0.50/s at 1024x1792 and 1792x1024; {note}")),
    )


def cost_of(job: Job) -> float | None:
    """Estimated USD for a job (the catalogue's price), or None (no known price)."""
    return job_cost(job.provider, job.model, job.size, job.seconds)


def job_cost(provider: str, model: str, size: str, seconds: int) -> float | None:
    """Estimated USD for one job, or None for a model with no known price."""
    if provider == "openai":
        return estimated_cost(model, size, seconds)
    info = find_model(provider, model)
    return None if info is None else info.cost(size, seconds)


def find_model(provider: str, model: str) -> ModelInfo | None:
    for info in models(provider):
        if info.id == model:
            return info
    return None


def find_alias(name: str, providers: Sequence[str] = SHIPPED) -> str | None:
    """The `PROVIDER:MODEL` a catalogue alias stands for (`kling`), else None."""
    for provider in providers:
        for info in models(provider):
            if name in info.aliases:
                return info.ref
    return None


# --- mapping a request onto a model's fields ---------------------------------------------


@dataclass(frozen=True)
class Mapped:
    fields: dict[str, Any]  # the model's input fields for --seconds and --size
    seconds: int  # what the job records (0: not known)
    size: str  # what the job records ("": the model's default)


def map_request(info: ModelInfo, *, seconds: int | None, size: str | None,
                image: bool = False) -> Mapped:
    """The model's fields for `--seconds`/`--size` (``image``: the job has one);
    InvalidInput (exit 2) naming what the model takes for a value it does not take."""
    fields: dict[str, Any] = {}
    chosen = 0
    if seconds is not None:
        if info.seconds is None:
            raise InvalidInput(f"{info.ref} takes no --seconds (its length is fixed; "
                               "send the model's own field with --param)")
        if not info.seconds.takes(seconds):
            raise InvalidInput(f"{info.ref} takes --seconds {info.seconds.describe()} "
                               f"(got {seconds})")
        chosen = seconds
    elif info.seconds is not None and info.seconds.default is not None:
        chosen = info.seconds.default
    if info.seconds is not None and chosen:
        fields[info.seconds.field] = info.seconds.encode(chosen)
    if size is None and info.size_field and info.default_size:
        size = info.default_size  # a required field: the model's default, recorded
    if size is not None:
        fields.update(_size_fields(info, size, image=image))
    side = _short_side(size) if size else info.default_resolution
    if chosen and not info.takes_seconds_at(side, chosen):
        raise InvalidInput(f"{info.ref} makes at most {info.max_seconds[side or 0]} s at a "
                           f"short side of {side} (got --seconds {chosen})")
    return Mapped(fields, chosen, size or "")


def _size_fields(info: ModelInfo, size: str, *, image: bool = False) -> dict[str, Any]:
    width, height = parse_wxh(size)
    taken = info.size_list()
    if info.size_field:
        if size not in info.sizes:
            raise InvalidInput(f"{info.ref} takes --size {', '.join(taken)} (got {size})")
        if size in info.image_sizes and not image:
            plain = [s for s in taken if s not in info.image_sizes]
            raise InvalidInput(f"{info.ref} takes --size {size} only with --image (without "
                               f"one: {', '.join(plain)})")
        return {info.size_field: f"{width}:{height}"}
    if not info.aspect_field and not info.resolution_field:
        raise InvalidInput(f"{info.ref} takes no --size (its output size is fixed, or set by "
                           "its image; send the model's own fields with --param)")
    out: dict[str, Any] = {}
    if info.aspect_field:
        aspect = _aspect(width, height)
        if aspect not in info.aspects:
            raise InvalidInput(f"{info.ref} takes --size {', '.join(taken)} (aspect ratios "
                               f"{', '.join(info.aspects)}; got {size}, {aspect})")
        out[info.aspect_field] = aspect
    if info.resolution_field:
        side = min(width, height)
        if side not in info.resolutions:
            raise InvalidInput(f"{info.ref} takes --size {', '.join(taken)} (got {size})")
        out[info.resolution_field] = info.resolutions[side]
    return out


def parse_wxh(size: str) -> tuple[int, int]:
    width, sep, height = size.partition("x")
    if not (sep and width.isascii() and width.isdigit() and height.isascii()
            and height.isdigit()) or not 0 < int(width) < 100000 or not 0 < int(height) < 100000:
        raise InvalidInput(f"--size must look like WIDTHxHEIGHT (got {size!r})")
    return int(width), int(height)


def _aspect(width: int, height: int) -> str:
    d = math.gcd(width, height)
    return f"{width // d}:{height // d}"


def _short_side(size: str) -> int | None:
    try:
        return min(parse_wxh(size))
    except InvalidInput:
        return None


def _size_for(aspect: str, short: int) -> str:
    """The WxH of an aspect ratio at a short side, rounded to even pixels (16:9 at 720:
    1280x720)."""
    w, h = (int(x) for x in aspect.split(":"))
    if w >= h:
        long = round(short * w / h / 2) * 2
        return f"{long}x{short}"
    long = round(short * h / w / 2) * 2
    return f"{short}x{long}"
