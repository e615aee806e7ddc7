"""Text that crosses a trust boundary: control characters out, secrets masked, lengths bounded.

`scrub` is the one function every string from a server or an exception goes through
before it is stored (error codes and messages, request ids, remote statuses, imported
fields, events, log lines) or printed (errors, notes, `-v` tracebacks): it masks every
configured secret, removes control characters and escape sequences, and bounds the
length. The secrets are registered once, from the settings (`register_secrets`).
`mask_key` shows a key safely; `mask_url` shows a URL without its credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, unquote, urlsplit

from sora_cli.errors import AuthError

# Whole escape sequences first (else only the ESC would go and "[31m" would stay),
# then any C0/C1 control character left; newline and tab are kept.
_CONTROL: Final = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erase
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, DCS...: titles, hyperlinks
    r"|\x1b[ -/]*[0-~]"  # other two-byte escapes
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
MASK: Final = "***"
MAX_TEXT: Final = 2000  # a stored or printed message, unless a caller asks for another bound
_PRE_CUT: Final = 64 * 1024  # what is cleaned at most (redaction runs on the whole text)
_SECRETS: set[str] = set()  # every secret this process knows of; see register_secrets
_PASSWORD_WORDS: Final = ("pass", "secret", "token")
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


def clean(text: str) -> str:
    """Text safe for a terminal and a store: escape sequences and control characters
    removed (newline and tab kept)."""
    return _CONTROL.sub("", text)


def register_secrets(secrets: Iterable[str | None]) -> None:
    """Add secrets (keys, passwords) for `scrub` to mask from now on, in this process.
    Also their quoted forms (repr, percent-encoded), as exceptions and URLs show them."""
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        for form in (secret, repr(secret)[1:-1], quote(secret, safe=""), secret.strip()):
            if len(form) >= 4:
                _SECRETS.add(form)


def forget_secrets() -> None:
    """Forget every registered secret (tests run many settings in one process)."""
    _SECRETS.clear()


def scrub(text: object, limit: int | None = MAX_TEXT) -> str:
    """The one way to store or print what a server or an exception said: every
    registered secret masked, control characters removed, at most `limit` characters."""
    value = text if isinstance(text, str) else str(text)
    value = redact(value, _SECRETS)[:_PRE_CUT]
    value = redact(clean(value), _SECRETS)  # cleaning may join a secret's pieces
    if limit is not None and len(value) > limit:
        value = value[: max(limit - 1, 0)] + "…"
    return value


def scrub_or_none(text: object, limit: int | None = MAX_TEXT) -> str | None:
    """`scrub`, keeping None (and an empty result) as None."""
    if text is None:
        return None
    return scrub(text, limit).strip() or None


def mask_key(key: str | None) -> str | None:
    """A secret shown safely: ``sk-...abcd`` for keys of 20 characters or more (the
    ends say which key it is, the middle stays hidden), ``***`` for shorter ones."""
    if not key:
        return None
    return MASK if len(key) < 20 else f"{key[:3]}...{key[-4:]}"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of every secret (4 characters or more) masked,
    longest first (a secret may contain a shorter one)."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def key_problem(key: str) -> str | None:
    """Why `key` cannot be sent in an HTTP header (None when it can): a key is
    printable ASCII without whitespace."""
    for at, char in enumerate(key, 1):
        if char.isspace():
            return f"it has a whitespace character at position {at}"
        if not (char.isascii() and char.isprintable()):
            return f"it has a character that is not printable ASCII at position {at}"
    return None if key else "it is empty"


def checked_key(value: str, origin: str, warn: list[str]) -> str:
    """An API key as it will be sent: one trailing newline (``$(cat key.txt)`` of a CRLF
    file) is removed with a note; anything else that cannot go in a header is refused
    (AuthError, exit 4), naming where the key came from (`origin`) and never showing it."""
    for end in ("\r\n", "\n", "\r"):
        if value.endswith(end):
            value = value[: -len(end)]
            warn.append(f"removed a trailing newline from {origin}")
            break
    problem = key_problem(value)
    if problem is not None:
        raise AuthError(f"{origin} is not a usable API key: {problem} (keys are printable "
                        "ASCII without spaces); nothing was sent")
    return value


def mask_url(url: str | None) -> str | None:
    """A URL fit to show: no user name or password (``***@``), every password-like
    query parameter masked. A URL that does not parse cleanly (an unencoded ``@`` or
    ``/`` in its password, a bad percent escape, a bad port...) keeps only its scheme:
    where its password ends cannot be told."""
    if not url:
        return url
    scheme, sep, _ = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return MASK
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not one)
    except ValueError:
        return f"{scheme}://{MASK}"
    if (_BAD_ESCAPE.search(url) or url.count("@") != parts.netloc.count("@")
            or parts.netloc.count("@") > 1):
        return f"{scheme}://{MASK}"
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else host
    query = _masked_query(parts.query)
    return f"{scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _password_like(name: str) -> bool:
    lowered = unquote(name).lower()
    return any(word in lowered for word in _PASSWORD_WORDS)


def _masked_query(query: str) -> str:
    pairs = []
    for pair in query.split("&") if query else []:
        name, eq, _ = pair.partition("=")
        pairs.append(f"{name}={MASK}" if eq and _password_like(name) else pair)
    return "&".join(pairs)


def url_secrets(url: str | None) -> list[str]:
    """The secrets a URL may carry: its password (as written and decoded; for a URL that
    does not parse, everything between ``://`` and the last ``@``) and the values of its
    password-like query parameters."""
    if not url or "://" not in url:
        return [url] if url else []
    found: list[str] = []
    rest = url.split("://", 1)[1]
    userinfo = rest.rsplit("@", 1)[0] if "@" in rest else ""  # whatever the shape
    if ":" in userinfo:  # a user name alone is no secret
        password = userinfo.split(":", 1)[1]
        found += [userinfo, password, unquote(password)]
    for pair in rest.replace("?", "&").split("&"):
        name, eq, value = pair.partition("=")
        if eq and _password_like(name):
            found += [value, unquote(value)]
    return [s for s in found if s]
