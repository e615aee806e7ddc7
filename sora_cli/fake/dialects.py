"""The dialects of the Videos contract the fake can play (``--dialect``), as the
servers that speak them are documented (see the README's recipes):

- ``openai`` (default): the contract as OpenAI published it.
- ``vllm-omni``: vLLM-Omni's server: create takes multipart forms only (FastAPI form
  fields: a JSON body is refused with a 422 listing the missing ``prompt``), with the
  extra fields ``width``, ``height``, ``num_frames``, ``fps``, ``seed``,
  ``negative_prompt``; the create answers only ``id``, ``status``, ``created_at``; no
  remix (404); a bearer key only when started with ``--api-key`` (else no auth at all);
  list, content and delete as the contract.
- ``litellm``: a LiteLLM proxy. The model names its backend (``gemini/veo-3.1-...``;
  none: ``openai``); ids are ``BACKEND::operations/HEX`` for Veo backends (``gemini``,
  ``vertex_ai``) and ``BACKEND::video_HEX`` otherwise; a running Veo job is
  ``processing``; ``seconds`` may be a number; list calls need ``custom_llm_provider``
  (400 without) and Veo backends have no list and no remix (404).

Quirks (``--quirk``, repeatable) add one difference on top of any dialect, so that a
server can be played that combines them (vLLM-Omni behind a gateway, say):

- ``processing``: a queued or running job is ``processing``;
- ``opaque-ids``: ids are ``BACKEND::operations/HEX`` (with ``::`` and ``/``);
- ``no-list``: ``GET /videos`` answers 404.
"""

from __future__ import annotations

import uuid
from typing import Final

from sora_cli.fake.errors import ApiFailure

DIALECTS: Final = ("openai", "vllm-omni", "litellm")
QUIRKS: Final = ("processing", "opaque-ids", "no-list")
OMNI: Final = "vllm-omni"
LITELLM: Final = "litellm"
VEO_BACKENDS: Final = ("gemini", "vertex_ai")
OMNI_FIELDS: Final = frozenset({"width", "height", "num_frames", "fps", "seed",
                                "negative_prompt"})


def backend_of(model: str) -> str:
    """LiteLLM's backend of a model name (`gemini/veo-3.1` -> gemini)."""
    head, sep, _ = model.partition("/")
    return head if sep else "openai"


def new_id(dialect: str, model: str, quirks: tuple[str, ...] = ()) -> str:
    hexa = uuid.uuid4().hex
    backend = backend_of(model)
    if "opaque-ids" in quirks:
        return f"{backend}::operations/{hexa}"
    if dialect != LITELLM:
        return "video_" + hexa
    if backend in VEO_BACKENDS:
        return f"{backend}::operations/{hexa}"
    return f"{backend}::video_{hexa}"


def status_word(dialect: str, model: str, status: str, quirks: tuple[str, ...] = ()) -> str:
    """The word the dialect's server uses for a job's status."""
    veo = dialect == LITELLM and backend_of(model) in VEO_BACKENDS
    if (veo or "processing" in quirks) and status in ("queued", "in_progress"):
        return "processing"
    return status


def check_encoding(dialect: str, content_type: str) -> None:
    """vLLM-Omni's create is a FastAPI handler of form fields: JSON gets a 422."""
    if dialect == OMNI and not content_type.lower().startswith("multipart/form-data"):
        raise ApiFailure(422, "Field required", raw={"detail": [
            {"type": "missing", "loc": ["body", "prompt"], "msg": "Field required",
             "input": None}]})


def create_answer(dialect: str, view: dict[str, object]) -> dict[str, object]:
    """vLLM-Omni answers a create with three fields; the rest comes from a retrieve."""
    if dialect == OMNI:
        return {key: view[key] for key in ("id", "status", "created_at")}
    return view


def extra_fields(dialect: str) -> frozenset[str]:
    return OMNI_FIELDS if dialect == OMNI else frozenset()


def numeric_seconds(dialect: str) -> bool:
    return dialect == LITELLM


def needs_auth(dialect: str, api_key: str | None) -> bool:
    """vLLM-Omni checks a bearer key only when started with --api-key."""
    return dialect != OMNI or api_key is not None


def check_remix(dialect: str, model: str) -> None:
    if dialect == OMNI or (dialect == LITELLM and backend_of(model) in VEO_BACKENDS):
        raise ApiFailure(404, "Not Found", raw={"detail": "Not Found"})


def list_backend(dialect: str, query: dict[str, str], quirks: tuple[str, ...] = ()
                 ) -> str | None:
    """The backend a LiteLLM list call is for (None: every video, other dialects); a
    404 where there is no list."""
    if "no-list" in quirks:
        raise ApiFailure(404, "Not Found", raw={"detail": "Not Found"})
    if dialect != LITELLM:
        return None
    backend = query.get("custom_llm_provider")
    if not backend:
        raise ApiFailure(400, "custom_llm_provider is required to list videos "
                         "(e.g. ?custom_llm_provider=openai)", param="custom_llm_provider")
    if backend in VEO_BACKENDS:
        raise ApiFailure(404, f"list videos is not supported for {backend}")
    return backend
