"""The fake's fal and Replicate families against the providers' official Python clients
(`fal-client`, `replicate`): if they are happy, the fake is faithful enough to test
sora's adapters against. Both are served over HTTPS with a local CA (trustme).

fal-client reads its queue host at import time and only speaks https, so its part runs
in a fresh interpreter with `FAL_QUEUE_RUN_HOST` pointing at the fake and
`SSL_CERT_FILE` at the local CA (what its own docs and source leave open to a user).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sora_cli.fake.server import FakeOptions, FakeServer, Fault

trustme = pytest.importorskip("trustme", reason="trustme is not installed")
pytest.importorskip("fal_client", reason="fal-client is not installed")
replicate = pytest.importorskip("replicate", reason="the replicate client is not installed")

KEL = "fal-ai/kling-video/v2.1/master/text-to-video"
MakeServer = Callable[..., FakeServer]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, Path, Path]:
    authority = trustme.CA()
    where = tmp_path_factory.mktemp("ca")
    cert = authority.issue_cert("127.0.0.1", "localhost")
    ca_pem, chain, key = where / "ca.pem", where / "chain.pem", where / "key.pem"
    authority.cert_pem.write_to_path(str(ca_pem))
    cert.private_key_pem.write_to_path(str(key))
    with chain.open("wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    return authority, ca_pem, chain, key


@pytest.fixture
def make_server(ca: tuple[Any, Path, Path, Path]) -> Iterator[MakeServer]:
    servers: list[FakeServer] = []

    def make(**options: Any) -> FakeServer:
        options.setdefault("job_seconds", 0.4)
        server = FakeServer(FakeOptions(tls_cert=str(ca[2]), tls_key=str(ca[3]),
                                        **options)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


# --- fal-client ---------------------------------------------------------------------------

FAL_SCRIPT = textwrap.dedent('''
    import json, sys, time
    import fal_client
    out = {}
    client = fal_client.SyncClient(key="fal-key")
    app = sys.argv[1]
    handle = client.submit(app, arguments={"prompt": "a fox", "duration": "5",
                                           "aspect_ratio": "16:9"})
    out["request_id"] = handle.request_id
    out["status_url"] = handle.status_url
    out["first"] = type(handle.status(with_logs=True)).__name__
    out["result"] = handle.get()
    out["last"] = type(handle.status()).__name__
    # the module-level calls build the URLs from the app id (the subpath is dropped)
    out["by_id"] = type(client.status(app, handle.request_id)).__name__
    try:
        handle.cancel()
    except fal_client.client.FalClientHTTPError as exc:
        out["late_cancel"] = [exc.status_code, exc.message]
    queued = client.submit(app, arguments={"prompt": "cancel me"})
    queued.cancel()
    out["cancelled"] = client.status(app, queued.request_id).__dict__.get("error")
    try:
        client.submit(app, arguments={"prompt": "x", "duration": "7"})
    except fal_client.client.FalClientHTTPError as exc:
        out["invalid"] = [exc.status_code, exc.message]
    bad = fal_client.SyncClient(key="wrong")
    try:
        bad.submit(app, arguments={"prompt": "x"})
    except fal_client.client.FalClientHTTPError as exc:
        out["unauthorized"] = exc.status_code
    print(json.dumps(out))
''')


def run_fal(server: FakeServer, ca_pem: Path) -> dict[str, Any]:
    host = server.root_url.removeprefix("https://") + "/fal"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "SSL_"))},
           "FAL_QUEUE_RUN_HOST": host, "FAL_RUN_HOST": host, "SSL_CERT_FILE": str(ca_pem),
           "NO_PROXY": "127.0.0.1,localhost", "FAL_KEY": "fal-key"}
    r = subprocess.run([sys.executable, "-c", FAL_SCRIPT, KEL], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(json.loads(r.stdout.splitlines()[-1]))


def test_fal_client_submits_polls_fetches_and_cancels(
        make_server: MakeServer, ca: tuple[Any, Path, Path, Path]) -> None:
    server = make_server(api_key="fal-key", job_seconds=3.0)
    out = run_fal(server, ca[1])
    # the handle's URLs carry the owner and the app only
    assert out["status_url"].endswith(f"/fal/fal-ai/kling-video/requests/{out['request_id']}"
                                      "/status")
    assert out["first"] in ("Queued", "InProgress")
    assert out["last"] == out["by_id"] == "Completed"
    video = out["result"]["video"]
    assert video["content_type"] == "video/mp4"
    assert video["url"].startswith(server.cdn_url)  # results live on another origin
    assert out["late_cancel"][0] == 400 and "ALREADY_COMPLETED" in out["late_cancel"][1]
    assert out["cancelled"] == "Request was cancelled"
    assert out["invalid"][0] == 422 and out["invalid"][1][0]["loc"] == ["body", "duration"]
    assert out["unauthorized"] == 401


def test_fal_client_retries_a_throttled_status_read(
        make_server: MakeServer, ca: tuple[Any, Path, Path, Path]) -> None:
    server = make_server(job_seconds=0.5)
    server.add_faults(Fault("error", "retrieve", status=429, retry_after_ms=10, times=2))
    out = run_fal(server, ca[1])
    assert out["last"] == "Completed"
    throttled = [e for e in server.request_log() if e[2] == 429]
    assert len(throttled) == 2


# --- replicate ------------------------------------------------------------------------------


def client(server: FakeServer, ca: tuple[Any, Path, Path, Path], token: str = "r8-key") -> Any:
    import ssl

    import httpx

    context = ssl.create_default_context(cafile=str(ca[1]))
    return replicate.Client(api_token=token, base_url=f"{server.root_url}/replicate",
                            transport=httpx.HTTPTransport(verify=context))


def fetch(url: str, ca: tuple[Any, Path, Path, Path]) -> bytes:
    import ssl

    import httpx

    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca[1]))) as http:
        answer = http.get(url)
        answer.raise_for_status()
        return answer.content


def test_replicate_client_creates_waits_and_downloads(
        make_server: MakeServer, ca: tuple[Any, Path, Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_POLL_INTERVAL", "0.05")
    server = make_server(api_key="r8-key")
    c = client(server, ca)
    prediction = c.models.predictions.create(model="google/veo-3",
                                             input={"prompt": "a lighthouse", "duration": 8})
    assert prediction.status == "starting" and prediction.model == "google/veo-3"
    prediction.wait()
    assert prediction.status == "succeeded"
    assert prediction.output.startswith(server.cdn_url)
    data = fetch(prediction.output, ca)
    assert hashlib.sha256(data).hexdigest() == server.expected_sha256(prediction.id)
    again = c.predictions.get(prediction.id)
    assert again.completed_at is not None and again.metrics["predict_time"] > 0


def test_replicate_client_cancels_lists_and_reads_errors(
        make_server: MakeServer, ca: tuple[Any, Path, Path, Path]) -> None:
    server = make_server(api_key="r8-key", job_seconds=30, list_page_size=2,
                         fail_prompt="forbidden")
    c = client(server, ca)
    made = [c.models.predictions.create(model="google/veo-3", input={"prompt": f"clip {n}"})
            for n in range(5)]
    cancelled = c.predictions.cancel(made[0].id)
    assert cancelled.status == "canceled"
    listed = [p.id for page in replicate.paginate(c.predictions.list) for p in page]
    assert listed == [p.id for p in reversed(made)]  # newest first, over three pages
    with pytest.raises(replicate.exceptions.ReplicateError) as invalid:
        c.models.predictions.create(model="google/veo-3", input={"prompt": "x", "duration": 7})
    assert invalid.value.status == 422 and "duration" in (invalid.value.detail or "")
    with pytest.raises(replicate.exceptions.ReplicateError) as denied:
        client(server, ca, token="wrong").predictions.get(made[1].id)
    assert denied.value.status == 401


def test_replicate_client_sees_a_failed_prediction(
        make_server: MakeServer, ca: tuple[Any, Path, Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_POLL_INTERVAL", "0.05")
    server = make_server(fail_prompt="forbidden")
    prediction = client(server, ca).models.predictions.create(
        model="google/veo-3", input={"prompt": "something forbidden"})
    prediction.wait()
    assert prediction.status == "failed" and "content policy" in prediction.error
