#!/usr/bin/env bash
# Offline quick start: a local fake Videos API, one job submitted, waited on and saved.
# Everything lives in a throwaway SORA_HOME; nothing reaches a real server.
set -euo pipefail
command -v sora >/dev/null || { echo "sora is not on PATH (activate .venv first)" >&2; exit 1; }

work=$(mktemp -d)
export SORA_HOME="$work/home"
sora fake-server --job-seconds 3 --idle-exit 120 > "$work/fake.url" &
fake=$!
trap 'sora runner stop >/dev/null 2>&1 || true; kill $fake 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/fake.url" ] && break; sleep 0.1; done

export OPENAI_BASE_URL=$(head -n1 "$work/fake.url")
export OPENAI_API_KEY=sk-local-fake-key
export SORA_POLL_MIN_SECONDS=0.5

id=$(sora submit "a corgi surfing at sunset" --seconds 8 --size 1280x720)
echo "submitted: $id"
sora list
path=$(sora wait "$id" --download -o "$work/clips/")
echo "saved: $path ($(wc -c < "$path") bytes)"
sora status "$id" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print("status:", j["status"], "sha256:", j["sha256"])'
