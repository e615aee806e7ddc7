"""`python -m sora_cli` and the `sora` console script."""

from __future__ import annotations


def main() -> None:
    import os

    os.umask(0o077)  # everything sora creates in its data dir is private to the user
    from sora_cli.cli.main import main as run

    run()


if __name__ == "__main__":
    main()
