"""`sora serve`: the job store over HTTP (a JSON API and server-sent events) and a
gallery page, on FastAPI and uvicorn (the `serve` extra).

A CLI-level edge like `sora_cli.cli`: it uses the services (the same store, the same
detached runner) and shows jobs in the CLI's JSON shape, which `sora serve` hands in
(the CLI starts the server, so the server imports nothing of the CLI: no cycle). Only
that command imports this package, inside its function, so no other command pays for
FastAPI.

- `server`: binding, the base URL on stdout, uvicorn, signals.
- `app`: the application factory; `gate`: the checks every request passes (host,
  token, JSON-only POSTs) and the security headers.
- `routes` (the API), `media` (saved files, with Range), `events` (the change feed as
  server-sent events), `body` (the submit body), `contexts` (one store connection per
  worker thread); the page itself is in `static/`.
"""
