"""The ``loopml`` command line (Typer + rich)."""
