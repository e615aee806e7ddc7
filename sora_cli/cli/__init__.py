"""The command-line edge: the Typer app (app.py), one module per command family,
rendering (render.py). `main.py` registers the commands; it is the only module that
imports them all."""
