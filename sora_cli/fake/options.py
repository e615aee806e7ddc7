"""Options of the fake Videos API server, and the command line that sets them."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from sora_cli.fake.dialects import DIALECTS, QUIRKS
from sora_cli.fake.faults import MIX_KINDS, fault_mix


@dataclass
class FakeOptions:
    job_seconds: float = 5.0
    fail_prompt: str | None = None
    error_rate: float = 0.0
    seed: int | None = None
    poll_after_ms: int | None = 1000
    video_bytes: int | None = None  # None: the real sample media; N: synthetic, N bytes
    expire_seconds: int = 86400
    api_key: str | None = None
    idle_exit: float | None = None
    range_support: bool = True
    clock_offset: float = 0.0
    fault_mix: dict[str, float] | None = None
    content_redirect: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    aux_port: int = 0  # the second origin: the CDN and fal's platform API (0: any free port)
    list_page_size: int = 100  # Replicate's list page
    url_seconds: float = 3600.0  # how long the signed result URLs (Runway, MiniMax) last
    dialect: str = "openai"  # the Videos contract as which server speaks it (dialects.py)
    quirks: tuple[str, ...] = ()  # differences added on top of the dialect (dialects.py)
    # Google: service accounts whose assertions the token endpoint takes (email -> RSA
    # n, e; also POST /_fake/google-keys), and how long its access tokens live
    google_keys: dict[str, tuple[int, int]] = field(default_factory=dict)
    token_seconds: float = 3600.0
    kling_access_key: str = "kling-fake-access-key"  # the key pair Kling's JWTs are from
    kling_secret_key: str = "kling-fake-secret-key"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sora-fake-server", description="Serve a local fake of the Videos API."
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=0, help="0 (default) picks a free port")
    add("--job-seconds", type=float, default=FakeOptions.job_seconds)
    add("--fail-prompt", help="prompts containing this text end failed (moderation)")
    add("--error-rate", type=float, default=0.0, help="probability of a random fault")
    add("--seed", type=int)
    add(
        "--poll-after-ms",
        type=int,
        default=FakeOptions.poll_after_ms,
        help="openai-poll-after-ms on retrieve; negative sends none",
    )
    add("--video-bytes", type=int, default=None, metavar="N",
        help="serve synthetic content of N bytes instead of the real sample MP4 "
             "(and synthetic previews): for size, range and huge-file tests")
    add("--expire-seconds", type=int, default=FakeOptions.expire_seconds)
    add("--api-key", help="require exactly this key")
    add("--idle-exit", type=float, help="stop after this many seconds without a request")
    add("--no-range", action="store_true", help="ignore Range headers on /content")
    add("--clock-offset", type=float, default=0.0,
        help="seconds added to the server's clock (its timestamps and Date header)")
    add("--fault-mix", type=fault_mix, metavar="KIND=P,...",
        help="random faults per request, e.g. 429=0.1,500=0.1,drop=0.05,truncate=0.1 "
             f"(kinds: {', '.join(sorted(MIX_KINDS))})")
    add("--content-redirect", metavar="ROOT",
        help="answer content requests with a 302 to ROOT/_fake/cdn/{id} (another fake)")
    add("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    add("--tls-key", help="the certificate's private key (PEM)")
    add("--aux-port", type=int, default=0,
        help="port of the second origin (the CDN of fal and Replicate results, and fal's "
             "platform API); 0 (default) picks a free one (GET /_fake/urls says which)")
    add("--url-seconds", type=float, default=FakeOptions.url_seconds,
        help="how long the signed result URLs of Runway and MiniMax last")
    add("--dialect", choices=DIALECTS, default="openai",
        help="speak the Videos contract as this server does: openai (default), vllm-omni "
             "(multipart-only create, minimal create answer, no remix, auth only with "
             "--api-key) or litellm (processing, gemini::operations/... ids, no list for "
             "Veo, custom_llm_provider on list calls, numeric seconds)")
    add("--quirk", action="append", choices=QUIRKS, default=[],
        help="one more difference on top of the dialect (repeatable): processing (a "
             "running job's status), opaque-ids (BACKEND::operations/HEX ids), no-list "
             "(GET /videos answers 404)")
    add("--token-seconds", type=float, default=FakeOptions.token_seconds,
        help="lifetime of the Google access tokens the token endpoint issues")
    add("--kling-keys", metavar="ACCESS:SECRET",
        help="the Kling key pair whose JWTs the Kling family takes (default: "
             f"{FakeOptions.kling_access_key}:{FakeOptions.kling_secret_key})")
    return parser
