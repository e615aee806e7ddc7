"""Durations typed on the command line (`--since 7d`, `--older-than 30d`): pure parsing."""

from __future__ import annotations

import re
from typing import Final

from sora_cli.errors import InvalidInput

_DURATION: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhdw])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, option: str) -> float:
    """`45s`, `30m`, `12h`, `7d`, `2w` as seconds (> 0); else InvalidInput naming `option`."""
    m = _DURATION.fullmatch(text.strip().lower())
    seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)] if m else 0.0
    if seconds <= 0:
        raise InvalidInput(f"{option} must be a duration like 30m, 12h, 7d or 2w (got {text!r})")
    return seconds
