"""Text that crosses a trust boundary: control characters out, secrets masked.

One `clean` for every string a server sends or a terminal shows, one `mask_key` for
every secret shown, one `redact` for every message that might quote a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

# Whole escape sequences first (else only the ESC would go and "[31m" would stay),
# then any C0/C1 control character left; newline and tab are kept.
_CONTROL: Final = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erase
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, DCS...: titles, hyperlinks
    r"|\x1b[ -/]*[0-~]"  # other two-byte escapes
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
MASK: Final = "***"


def clean(text: str) -> str:
    """Text safe for a terminal and a store: escape sequences and control characters
    removed (newline and tab kept)."""
    return _CONTROL.sub("", text)


def mask_key(key: str | None) -> str | None:
    """A secret shown safely: ``sk-...abcd`` for keys of 20 characters or more (the
    ends say which key it is, the middle stays hidden), ``***`` for shorter ones."""
    if not key:
        return None
    return MASK if len(key) < 20 else f"{key[:3]}...{key[-4:]}"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of every secret (4 characters or more) masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text
