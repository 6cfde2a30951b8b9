"""Command line (Typer + Rich): thin, over a local store or a running server."""
