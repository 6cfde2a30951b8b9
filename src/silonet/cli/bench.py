"""`silonet bench ...`: benchmarks that print and save their figures (JSON and PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from silonet.config import lab_dir

LAB_DIR = lab_dir()
bench_app = typer.Typer(help="Benchmarks: figures as ratios against a baseline measured in the same run.",
                        no_args_is_help=True)


@bench_app.command("ssh")
def ssh(
    changes: Annotated[int, typer.Option(min=1, max=4000, help="changes to make in each mode")] = 100,
    out: Annotated[Path, typer.Option(help="where bench-ssh.json and bench-ssh.png go")] = Path("bench-results"),
    dir_: Annotated[Path, typer.Option("--dir", help="lab state directory")] = LAB_DIR,
) -> None:
    """N changes: one new SSH connection per change vs one persistent, batched session."""
    from silonet.bench.ssh import main

    main(changes, out, dir_)
