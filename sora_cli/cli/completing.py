"""Shell completion of option values that depend on the config: `--model` and
`--provider` (named endpoints and installed plug-ins included). Run only when a shell
asks; a config that cannot be read completes nothing."""

from __future__ import annotations


def complete_model(incomplete: str) -> list[str]:
    from sora_cli.config import load_settings
    from sora_cli.errors import SoraError
    from sora_cli.services.providers import model_completions

    try:
        return model_completions(load_settings(warn=[]), incomplete)
    except SoraError:
        return []


def complete_provider(incomplete: str) -> list[str]:
    from sora_cli.config import load_settings
    from sora_cli.errors import SoraError
    from sora_cli.services.providers import provider_names

    try:
        return [n for n in provider_names(load_settings(warn=[])) if n.startswith(incomplete)]
    except SoraError:
        return []
