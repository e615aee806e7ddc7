"""The providers sora ships, as facts: their names, key variables, base URLs, the shape
of their model ids and what each can do. Pure data: the adapters themselves
(`sora_cli.providers.<name>`) are imported only when a job of theirs is worked, but a
submit must check a model id and name the missing key without importing them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# The optional capabilities an adapter may declare (see providers/base.py).
FIND_CREATED: Final = "find_created"  # reconcile an unanswered create by listing
CANCEL: Final = "cancel"  # stop a remote job
DELETE: Final = "delete"  # delete a remote video
REMIX: Final = "remix"  # a new video from a finished one and a prompt
VARIANTS: Final = "variants"  # thumbnail and spritesheet besides the video
IMAGE_INPUT: Final = "image_input"  # an image reference (image-to-video)
IMPORT: Final = "import"  # look a job up by its remote id (`sora import`)
CAPABILITIES: Final = (FIND_CREATED, CANCEL, DELETE, REMIX, VARIANTS, IMAGE_INPUT, IMPORT)

# How a provider's credentials come: its key variable (KEY), a key pair (KEY_PAIR: the
# key variable and the `secret_key` setting, as Kling's access and secret keys), or
# Google's Application Default Credentials (ADC: found by google-auth, checked by the
# adapter when a job is submitted or worked).
KEY: Final = "key"
KEY_PAIR: Final = "key_pair"
ADC: Final = "adc"


@dataclass(frozen=True)
class Extra:
    """A provider's own setting beyond the common ones: `[providers.NAME] key = ...`,
    the environment variables that set it (strongest first), its default, and whether
    it is a secret (then only from a 0600 config file, and masked when shown)."""

    key: str
    envs: tuple[str, ...]
    default: str | None = None
    secret: bool = False


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    key_env: str  # the provider's conventional key variable
    base_url_envs: tuple[str, ...]  # env variables for the base URL, strongest first
    default_base_url: str
    model_pattern: re.Pattern[str]  # what a model id of this provider looks like
    model_example: str
    capabilities: frozenset[str]
    # A local --image file is sent inline as a data URI up to this many bytes (0: the
    # provider takes files another way, see its adapter).
    inline_image_bytes: int = 0
    platform_url: str | None = None  # a second API (fal's platform API: request lists)
    platform_url_envs: tuple[str, ...] = ()
    note: str = ""
    credentials: str = KEY  # KEY, KEY_PAIR or ADC (see above)
    extras: tuple[Extra, ...] = ()

    def extra(self, key: str) -> Extra | None:
        return next((e for e in self.extras if e.key == key), None)


OPENAI: Final = "openai"

BUILTIN: Final[dict[str, ProviderInfo]] = {
    "openai": ProviderInfo(
        "openai", "OPENAI_API_KEY", ("OPENAI_BASE_URL",), "https://api.openai.com/v1",
        re.compile(r"[^\s:]{1,200}"), "sora-2",
        frozenset({FIND_CREATED, DELETE, REMIX, VARIANTS, IMAGE_INPUT, IMPORT}),
        note="the Videos contract; OpenAI's and Azure's own endpoints are retired: "
             "gateways and self-hosted servers"),
    "fal": ProviderInfo(
        "fal", "FAL_KEY", ("SORA_FAL_BASE_URL",), "https://queue.fal.run",
        # an endpoint id: owner/app, then the endpoint's path (fal-ai/kling-video/v2.1/...)
        re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9][A-Za-z0-9._-]{0,99}){1,8}"),
        "fal-ai/kling-video/v2.1/master/text-to-video",
        frozenset({FIND_CREATED, CANCEL, IMAGE_INPUT}),
        # "some models also accept data URIs" (fal CDN docs; no limit documented): sora
        # sends a local image inline up to 8 MiB (its upload API is not used)
        inline_image_bytes=8 * 1024 * 1024,
        platform_url="https://api.fal.ai/v1", platform_url_envs=("SORA_FAL_PLATFORM_URL",),
        note="queue API"),
    "replicate": ProviderInfo(
        "replicate", "REPLICATE_API_TOKEN", ("SORA_REPLICATE_BASE_URL", "REPLICATE_BASE_URL"),
        "https://api.replicate.com",
        re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}/[A-Za-z0-9][A-Za-z0-9._-]{0,99}"),
        "google/veo-3",
        frozenset({FIND_CREATED, CANCEL, IMAGE_INPUT, IMPORT}),
        # a data URI "is only recommended if the file is less than 1MB" (input-files docs)
        inline_image_bytes=1024 * 1024,
        note="predictions API; outputs are deleted an hour after the prediction ends"),
    "runway": ProviderInfo(
        "runway", "RUNWAYML_API_SECRET", ("SORA_RUNWAY_BASE_URL", "RUNWAYML_BASE_URL"),
        "https://api.dev.runwayml.com",
        re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"), "gen4.5",
        # no list of tasks: an unanswered create is never found again (create_unconfirmed)
        frozenset({CANCEL, IMAGE_INPUT}),
        # "base64 data URI ... up to 5MB" (the promptImage docstring): the URI, so the
        # image's own bytes up to 3.5 MiB (base64 makes 4 of 3)
        inline_image_bytes=3_670_016,
        note="task API (X-Runway-Version 2024-11-06); output URLs expire in 24-48 h"),
    "luma": ProviderInfo(
        "luma", "LUMAAI_API_KEY", ("SORA_LUMA_BASE_URL", "LUMAAI_BASE_URL"),
        "https://api.lumalabs.ai/dream-machine/v1",
        re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"), "ray-2",
        # keyframes take image URLs only ("currently this is the only way"): no inline
        frozenset({FIND_CREATED, CANCEL, IMAGE_INPUT, IMPORT}),
        note="Dream Machine API (legacy); how long assets.video stays is undocumented"),
    "minimax": ProviderInfo(
        "minimax", "MINIMAX_API_KEY", ("SORA_MINIMAX_BASE_URL",), "https://api.minimax.io",
        re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"), "MiniMax-Hailuo-2.3",
        # no task list and no cancel: an unanswered create is never found again
        frozenset({IMAGE_INPUT}),
        # first_frame_image: "JPG/PNG/WebP, under 20MB", as a URL or a data URI
        inline_image_bytes=19_000_000,
        note="Hailuo video API; China: SORA_MINIMAX_BASE_URL=https://api.minimaxi.com"),
    "vertex": ProviderInfo(
        # Application Default Credentials (google-auth, the `vertex` extra): the
        # variable stands for "a service-account file"; gcloud's ADC and a GCE
        # metadata server work too, with the project set.
        "vertex", "GOOGLE_APPLICATION_CREDENTIALS", ("SORA_VERTEX_BASE_URL",),
        "https://{location}-aiplatform.googleapis.com",  # {location} filled in per request
        re.compile(r"[a-z0-9][a-z0-9.-]{0,99}"), "veo-3.1-generate-001",
        frozenset({IMAGE_INPUT}),
        # no documented limit for inline image bytes in the Veo reference; sora sends a
        # local image inline up to 20 MiB (gs:// images: --param image='{"gcsUri": ...}')
        inline_image_bytes=20 * 1024 * 1024,
        note="Veo on Vertex AI (predictLongRunning); no list and no cancel",
        credentials=ADC,
        # GOOGLE_CLOUD_PROJECT is google-auth's own (the project ADC reports): not here,
        # so that it alone does not make a runner look for Google credentials
        extras=(Extra("project", ("SORA_VERTEX_PROJECT",)),
                Extra("location", ("SORA_VERTEX_LOCATION", "GOOGLE_CLOUD_LOCATION"),
                      "us-central1"),
                Extra("storage_uri", ("SORA_VERTEX_STORAGE_URI",)),
                Extra("storage_url", ("SORA_VERTEX_STORAGE_URL",),
                      "https://storage.googleapis.com"))),
    "kling": ProviderInfo(
        "kling", "KLING_ACCESS_KEY", ("SORA_KLING_BASE_URL",),
        "https://api-singapore.klingai.com",
        re.compile(r"kling-[a-z0-9-]{1,60}"), "kling-v2-1-master",
        frozenset({FIND_CREATED, IMAGE_INPUT}),
        # "image: Base64 or URL ... no larger than 10MB" (image2video reference)
        inline_image_bytes=10 * 1024 * 1024,
        note="Kling's own API; a JWT signed per request with the access and secret keys",
        credentials=KEY_PAIR,
        extras=(Extra("secret_key", ("KLING_SECRET_KEY",), secret=True),)),
}

_PROVIDER_NAME: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")

# What a named endpoint of the Videos contract can do (`[providers.NAME] api = "openai"`):
# the contract's own capabilities; whether it really lists, remixes or serves variants
# is its to answer (a refusal fails only the job that asked).
ENDPOINT_CAPABILITIES: Final = frozenset({FIND_CREATED, DELETE, REMIX, VARIANTS, IMAGE_INPUT,
                                          IMPORT})
ENCODINGS: Final = ("auto", "json", "multipart")
SECONDS_TYPES: Final = ("string", "number")


@dataclass(frozen=True)
class EndpointDialect:
    """How a named endpoint speaks the Videos contract (its `[providers.NAME]` table).

    ``create_encoding``: ``auto`` sends JSON and, on a 415 or 422 refusal, the same
    create once more as multipart (and remembers it); ``json`` or ``multipart`` fix it.
    ``seconds_type``: ``number`` sends ``seconds`` as a JSON number (some gateways).
    ``list_params``: query parameters added to every list call (LiteLLM's
    ``custom_llm_provider``). ``sizes``/``seconds``: when set, what a submit may ask
    for (else the server judges). ``models``: listed by `sora models`.
    """

    create_encoding: str = "auto"
    seconds_type: str = "string"
    list_params: tuple[tuple[str, str], ...] = ()
    sizes: tuple[str, ...] | None = None
    seconds: tuple[int, ...] | None = None
    models: tuple[str, ...] = ()


def valid_provider_name(name: str) -> bool:
    return _PROVIDER_NAME.fullmatch(name) is not None


def provider_info(name: str) -> ProviderInfo | None:
    return BUILTIN.get(name)
