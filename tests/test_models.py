"""Model references, --param values and the catalogue's mapping of --seconds/--size onto
each model's fields (pure domain rules)."""

from __future__ import annotations

from typing import Any

import pytest

from sora_cli.domain import catalogue
from sora_cli.domain.catalogue import find_model, map_request, models, parse_catalogue
from sora_cli.domain.models import (
    Defaults,
    Draft,
    ModelRef,
    parse_model_ref,
    parse_param,
    parse_params,
    resolve,
)
from sora_cli.errors import InvalidInput

KLING = "fal-ai/kling-video/v2.1/master/text-to-video"


@pytest.mark.parametrize(("text", "ref"), [
    ("sora-2", ModelRef("openai", "sora-2")),
    ("my-azure-deployment", ModelRef("openai", "my-azure-deployment")),
    (f"fal:{KLING}", ModelRef("fal", KLING)),
    ("replicate:google/veo-3", ModelRef("replicate", "google/veo-3")),
    ("kling", ModelRef("fal", KLING)),  # a catalogue alias
    ("veo-3", ModelRef("replicate", "google/veo-3")),
])
def test_model_references(text: str, ref: ModelRef) -> None:
    assert parse_model_ref(text) == ref


def test_config_aliases_come_first() -> None:
    aliases = {"kling": "replicate:kwaivgi/kling-v2.1-master", "mine": "fal:me/app/x"}
    assert parse_model_ref("kling", aliases=aliases) == ModelRef("replicate",
                                                                 "kwaivgi/kling-v2.1-master")
    assert str(parse_model_ref("mine", aliases=aliases)) == "fal:me/app/x"


@pytest.mark.parametrize(("text", "says"), [
    ("runway:gen4", "unknown provider 'runway'"),
    ("replicate:google/veo-3/extra", "replicate model ids look like google/veo-3"),
    ("fal:fal-ai", "fal model ids look like"),
    ("fal:fal-ai/../x", "fal model ids look like"),
    ("fal:fal-ai/app/requests/x", "not a usable model id"),
    ("", "--model is empty"),
])
def test_bad_model_references(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says.replace(".", r"\.").replace("(", r"\(")):
        parse_model_ref(text)


@pytest.mark.parametrize(("text", "pair"), [
    ("seed=7", ("seed", 7)),
    ('duration="10"', ("duration", "10")),
    ("aspect_ratio=16:9", ("aspect_ratio", "16:9")),
    ("generate_audio=false", ("generate_audio", False)),
    ('refs=["a","b"]', ("refs", ["a", "b"])),
    ("negative_prompt=blur, noise", ("negative_prompt", "blur, noise")),
    ("empty=", ("empty", "")),
])
def test_param_values_are_json_when_they_parse(text: str, pair: tuple[str, Any]) -> None:
    assert parse_param(text) == pair


@pytest.mark.parametrize("text", ["novalue", "=5", "bad key=1", "prompt=hi"])
def test_bad_params(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_param(text)


def test_params_are_bounded() -> None:
    with pytest.raises(InvalidInput, match="the limit is"):
        parse_params([f"big={'x' * 70000}"])
    assert parse_params(["a=1", "a=2"]) == {"a": 2}  # the last one wins


def draft(model: str, **kw: Any) -> Draft:
    return Draft(prompt="a fox", model=model, **kw)


def test_kling_maps_seconds_and_size_as_its_fields() -> None:
    req = resolve(draft(f"fal:{KLING}", seconds=5, size="1280x720"), Defaults())
    assert (req.provider, req.model, req.seconds, req.size) == ("fal", KLING, 5, "1280x720")
    assert req.params == {"duration": "5", "aspect_ratio": "16:9"}


def test_defaults_and_encodings_per_model() -> None:
    veo = resolve(draft("fal:fal-ai/veo3", size="1920x1080"), Defaults())
    assert veo.params == {"duration": "8s", "aspect_ratio": "16:9", "resolution": "1080p"}
    rep = resolve(draft("replicate:google/veo-3", seconds=4), Defaults())
    assert rep.params == {"duration": 4} and rep.seconds == 4 and rep.size == ""
    hailuo = resolve(draft("fal:fal-ai/minimax/hailuo-02/standard/image-to-video",
                           size="1366x768", image="https://x.test/a.png"), Defaults())
    assert hailuo.params == {"duration": "6", "resolution": "768P"}


def test_param_overrides_a_mapped_field_and_the_recorded_seconds() -> None:
    req = resolve(draft(f"fal:{KLING}", seconds=5, params={"duration": "10", "seed": 3}),
                  Defaults())
    assert req.params == {"duration": "10", "seed": 3} and req.seconds == 10


@pytest.mark.parametrize(("model", "kw", "says"), [
    (f"fal:{KLING}", {"seconds": 7}, "takes --seconds 5, 10 (got 7)"),
    (f"fal:{KLING}", {"size": "1792x1024"}, "takes --size 1280x720, 720x1280, 720x720"),
    ("fal:fal-ai/veo3", {"size": "1024x576"}, "(got 1024x576)"),
    ("fal:fal-ai/kling-video/v2.1/pro/image-to-video", {"image": None}, "give --image"),
    (f"fal:{KLING}", {"image": "https://x.test/a.png"}, "takes no image"),
    ("fal:fal-ai/minimax/hailuo-2.3/standard/text-to-video", {"size": "1280x720"},
     "takes no --size"),
    ("fal:someone/new-model", {"seconds": 5}, "not in sora's catalogue"),
    ("fal:someone/new-model", {"image": "https://x.test/a.png"}, "--param"),
])
def test_what_a_model_does_not_take_is_refused_naming_what_it_takes(
        model: str, kw: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        resolve(draft(model, **kw), Defaults())
    assert says in str(refused.value)


def test_a_model_not_in_the_catalogue_sends_the_prompt_and_params_only() -> None:
    req = resolve(draft("fal:someone/new-model", params={"duration": 5}), Defaults())
    assert (req.seconds, req.size, req.params) == (0, "", {"duration": 5})


def test_the_openai_contract_keeps_its_defaults_and_checks() -> None:
    req = resolve(Draft("a fox"), Defaults(model="sora-2-pro", size="1792x1024", seconds=8))
    assert (req.provider, req.model, req.size, req.seconds) == ("openai", "sora-2-pro",
                                                                "1792x1024", 8)
    with pytest.raises(InvalidInput, match="one of 4, 8, 12"):
        resolve(Draft("a fox", seconds=5), Defaults())


def test_the_shipped_catalogue_has_the_required_models() -> None:
    assert find_model("fal", KLING) is not None
    assert find_model("replicate", "google/veo-3") is not None
    for provider in catalogue.SHIPPED:
        infos = models(provider)
        assert len(infos) >= (8 if provider in ("fal", "replicate") else 4)  # platforms
        assert len({i.id for i in infos}) == len(infos)  # no id twice
        for info in infos:
            assert info.seconds is None or info.seconds.default is not None
            assert info.price is None or info.price.read == "2026-11-30"


def test_prices_per_second_per_video_and_by_resolution() -> None:
    kling = find_model("fal", KLING)
    wan = find_model("fal", "fal-ai/wan-25-preview/text-to-video")
    pika = find_model("fal", "fal-ai/pika/v2.2/text-to-video")
    assert kling is not None and wan is not None and pika is not None
    assert kling.cost("1280x720", 10) == 2.8
    assert wan.cost("854x480", 5) == 0.25 and wan.cost("", 5) == 0.75  # default 1080p
    assert pika.cost("1920x1080", 0) == 0.45
    assert find_model("replicate", "google/veo-3").cost("", 8) is None  # type: ignore[union-attr]


def test_a_catalogue_file_is_data() -> None:
    infos = parse_catalogue("fal", {"models": [{
        "id": "me/app", "seconds": {"field": "len", "min": 1, "max": 3, "as": "integer"},
        "aspect_ratio": {"field": "ar", "values": ["1:1"]}}]})
    mapped = map_request(infos[0], seconds=2, size="512x512")
    assert mapped.fields == {"len": 2, "ar": "1:1"}
    with pytest.raises(ValueError):
        parse_catalogue("fal", {"models": [{"id": "x", "seconds": {"field": "d", "as": "x"}}]})
