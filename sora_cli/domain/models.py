"""From what a user asks for to what a job records: model references, `--param`
values, and the request as the provider's model takes it.

- A model reference is `PROVIDER:MODEL` (`fal:fal-ai/kling-video/v2.1/master/...`,
  `replicate:google/veo-3`); a name without a prefix is an `openai` model, so every
  existing command and script keeps working. Aliases come from the config's
  `[aliases]` table first, then from the catalogue (`kling`).
- `--param KEY=VALUE`: VALUE is JSON when it parses as JSON, else the string as given
  (`--param duration='"10"'` sends a string, `--param seed=7` a number).
- `resolve` turns a `Draft` into a `VideoRequest`: for the OpenAI contract, the
  config's defaults and today's checks; for a catalogued model, `--seconds`/`--size`
  mapped onto its fields (catalogue.py) with `--param` values over them; for a model
  not in the catalogue, the prompt and `--param` values only (`--seconds`/`--size`
  cannot be mapped: exit 2 pointing at `--param`).

Pure rules, no I/O besides reading the shipped catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sora_cli.domain.jobs import VideoRequest, model_family, parse_seconds, validate_request
from sora_cli.domain.providers import BUILTIN, OPENAI, EndpointDialect, valid_provider_name
from sora_cli.errors import InvalidInput

_REF: Final = re.compile(r"([a-z][a-z0-9_-]{0,31}):(.+)", re.DOTALL)
_PARAM_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_SIZE: Final = re.compile(r"[1-9][0-9]{0,4}x[1-9][0-9]{0,4}")
MAX_PARAMS_BYTES: Final = 64 * 1024
RESERVED_PARAMS: Final = ("prompt",)


@dataclass(frozen=True)
class ModelRef:
    provider: str
    model: str

    def __str__(self) -> str:
        return self.model if self.provider == OPENAI else f"{self.provider}:{self.model}"


def parse_model_ref(text: str, *, aliases: Mapping[str, str] | None = None,
                    known: Collection[str] = tuple(BUILTIN)) -> ModelRef:
    """`PROVIDER:MODEL`, an alias of one, or a bare openai model name."""
    name = text.strip()
    if not name:
        raise InvalidInput("--model is empty")
    target = (aliases or {}).get(name)
    if target is None and ":" not in name and model_family(name) is None:
        from sora_cli.domain.catalogue import find_alias  # reads the catalogue files

        target = find_alias(name)
    if target is not None:
        name = target.strip()
    match = _REF.fullmatch(name)
    if match is None:
        ref = ModelRef(OPENAI, name)
    else:
        provider, model = match[1], match[2]
        if provider not in known:
            raise InvalidInput(f"unknown provider {provider!r} in --model {text!r} "
                               f"(providers: {', '.join(sorted(known))})")
        ref = ModelRef(provider, model)
    check_model_id(ref)
    return ref


def check_model_id(ref: ModelRef) -> None:
    info = BUILTIN.get(ref.provider)
    if not ref.model.isprintable() or any(c.isspace() for c in ref.model):
        raise InvalidInput(f"--model must be a model name (got {ref.model!r})")
    if info is not None and info.model_pattern.fullmatch(ref.model) is None:
        raise InvalidInput(f"{ref.provider} model ids look like {info.model_example} "
                           f"(got {ref.model[:140]!r})")
    if ".." in ref.model.split("/") or "/requests/" in f"/{ref.model}/":
        raise InvalidInput(f"not a usable model id: {ref.model[:140]!r}")


def parse_param(text: str) -> tuple[str, Any]:
    """`KEY=VALUE`: VALUE as JSON when it parses, else as the string given."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or _PARAM_KEY.fullmatch(key) is None:
        raise InvalidInput(f"--param must be KEY=VALUE with a field name as KEY "
                           f"(got {text[:80]!r})")
    if key in RESERVED_PARAMS:
        raise InvalidInput(f"--param {key}: the {key} is the PROMPT argument")
    import json  # here: `sora --help` never needs it

    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, value = parse_param(item)
        params[key] = value
    return check_params(params)


def check_params(params: Mapping[str, Any], where: str = "--param") -> dict[str, Any]:
    """Params as stored: string keys that name fields, JSON values, bounded in size."""
    for key in params:
        if not isinstance(key, str) or _PARAM_KEY.fullmatch(key) is None:
            raise InvalidInput(f"{where}: {str(key)[:80]!r} is not a field name")
        if key in RESERVED_PARAMS:
            raise InvalidInput(f"{where}: {key!r} is not a param (it is the prompt)")
    if not params:
        return {}
    import json

    try:
        size = len(json.dumps(params, ensure_ascii=False, allow_nan=False).encode())
    except ValueError:
        raise InvalidInput(f"{where}: values must be plain JSON (no NaN or Infinity)") from None
    if size > MAX_PARAMS_BYTES:
        raise InvalidInput(f"{where}: {size} bytes of params; the limit is {MAX_PARAMS_BYTES}")
    return dict(params)


# --- a request as asked, and as recorded ---------------------------------------------------


@dataclass(frozen=True)
class Defaults:
    """What a request leaves out comes from here: the config (for the OpenAI contract's
    size and seconds) and its aliases."""

    model: str = "sora-2"
    size: str = "720x1280"
    seconds: int = 4
    aliases: Mapping[str, str] = field(default_factory=dict)
    known: Collection[str] = tuple(BUILTIN)
    endpoints: Mapping[str, EndpointDialect] = field(default_factory=dict)  # by name


@dataclass(frozen=True)
class Draft:
    prompt: str
    model: str | None = None  # a model reference; None: the config's
    seconds: int | None = None  # None: the model's default
    size: str | None = None
    label: str | None = None
    image: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


def parse_whole_seconds(value: str | int) -> int:
    """`--seconds` as a whole number; which numbers a model takes is checked later."""
    if isinstance(value, bool):
        raise InvalidInput(f"--seconds must be a whole number (got {value!r})")
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise InvalidInput(f"--seconds must be a whole number of seconds (got {value!r})")
    return int(text)


def resolve(draft: Draft, defaults: Defaults) -> VideoRequest:
    """The request a job records (see the module docstring); InvalidInput for bad input."""
    ref = parse_model_ref(draft.model or defaults.model, aliases=defaults.aliases,
                          known=defaults.known)
    params = check_params(draft.params)
    if ref.provider == OPENAI:
        seconds = parse_seconds(draft.seconds if draft.seconds is not None
                                else defaults.seconds)
        req = VideoRequest(draft.prompt, ref.model, draft.size or defaults.size, seconds,
                           draft.label, draft.image, provider=OPENAI, params=params or None)
        return validate_request(req)
    dialect = defaults.endpoints.get(ref.provider)
    if dialect is not None:
        return _for_endpoint(draft, ref, params, dialect)
    from sora_cli.domain.catalogue import find_model, map_request

    info = find_model(ref.provider, ref.model)
    if info is None:
        if draft.seconds is not None or draft.size is not None:
            raise InvalidInput(
                f"{ref} is not in sora's catalogue (sora models --provider {ref.provider}): "
                "--seconds and --size cannot be mapped onto its fields; send them with "
                "--param (e.g. --param duration=5 --param aspect_ratio=16:9)")
        if draft.image is not None:
            raise InvalidInput(f"{ref} is not in sora's catalogue: its image field is not "
                               "known; send an image URL with --param (e.g. --param "
                               "image_url=https://...)")
        req = VideoRequest(draft.prompt, ref.model, "", 0, draft.label, None,
                           provider=ref.provider, params=params or None)
        return _checked(req)
    if draft.image is not None and info.image_field is None:
        raise InvalidInput(f"{ref} takes no image (image-to-video models: sora models "
                           f"--provider {ref.provider})")
    if draft.image is None and info.image_required and info.image_field not in params:
        raise InvalidInput(f"{ref} is an image-to-video model: give --image PATH|URL")
    mapped = map_request(info, seconds=draft.seconds, size=draft.size,
                         image=draft.image is not None or info.image_field in params)
    seconds = mapped.seconds
    if info.seconds is not None and info.seconds.field in params:  # --param wins
        seconds = _seconds_in(params[info.seconds.field], seconds)
    req = VideoRequest(draft.prompt, ref.model, mapped.size, seconds, draft.label, draft.image,
                       provider=ref.provider, params={**mapped.fields, **params} or None)
    return _checked(req)


def _for_endpoint(draft: Draft, ref: ModelRef, params: dict[str, Any],
                  dialect: EndpointDialect) -> VideoRequest:
    """A named endpoint's request: --seconds and --size are the contract's fields, sent
    as given (the server judges them) unless the endpoint's config restricts them; left
    out when not given (the server's defaults)."""
    seconds = draft.seconds or 0
    if draft.seconds is not None and seconds <= 0:
        raise InvalidInput(f"--seconds must be a positive whole number (got {draft.seconds})")
    if dialect.seconds is not None and draft.seconds is not None \
            and seconds not in dialect.seconds:
        raise InvalidInput(f"{ref.provider} takes --seconds "
                           f"{', '.join(map(str, dialect.seconds))} (got {seconds})")
    size = (draft.size or "").strip()
    if draft.size is not None and _SIZE.fullmatch(size) is None:
        raise InvalidInput(f"--size must look like WIDTHxHEIGHT (got {draft.size!r})")
    if dialect.sizes is not None and size and size not in dialect.sizes:
        raise InvalidInput(f"{ref.provider} takes --size {', '.join(dialect.sizes)} "
                           f"(got {size})")
    req = VideoRequest(draft.prompt, ref.model, size, seconds, draft.label, draft.image,
                       provider=ref.provider, params=params or None)
    return _checked(req)


def _seconds_in(value: Any, fallback: int) -> int:
    """The seconds a --param value for the duration field says ("10", "8s", 10)."""
    text = str(value).strip().removesuffix("s")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else fallback


def _checked(req: VideoRequest) -> VideoRequest:
    from sora_cli.domain.jobs import MAX_PROMPT_CHARS

    if not req.prompt.strip():
        raise InvalidInput("the prompt is empty")
    if len(req.prompt) > MAX_PROMPT_CHARS:
        raise InvalidInput(
            f"the prompt is {len(req.prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
    return req


def known_providers(configured: Collection[str]) -> tuple[str, ...]:
    """The provider names a model reference may use: the built-in ones and the config's."""
    return tuple(dict.fromkeys([*BUILTIN, *(n for n in configured if valid_provider_name(n))]))
