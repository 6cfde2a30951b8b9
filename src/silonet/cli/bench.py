"""`silonet bench ...`: benchmarks that print and save their figures (JSON and PNG). The
benchmarks are the ``bench`` extra: imported when a command runs, never with the CLI.

Each runs inside a ``bench.lifecycle.Run``: SIGINT/SIGTERM stop it and remove what it started,
and it exits 128 + the signal's number (130, 143) as a shell reports it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from silonet.cli.extras import require
from silonet.config import lab_dir

LAB_DIR = lab_dir()
bench_app = typer.Typer(help="Benchmarks: figures as ratios against a baseline measured in the same run.",
                        no_args_is_help=True)


@contextmanager
def _stoppable(work: Path | None = None, prefix: str | None = None) -> Iterator[Any]:
    """The bench's run (its work directory, lock and signals); a signal ends the command with
    128 + its number once everything is cleaned, a busy work directory with one line and 1."""
    from rich.markup import escape

    from silonet.bench import lifecycle

    try:
        with lifecycle.Run(work, prefix) as run:
            yield run
    except lifecycle.Stopped as stop:
        raise typer.Exit(stop.exit_code) from None
    except lifecycle.WorkDirBusy as err:
        lifecycle.console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(1) from None


def _sizes(items: list[str] | None, known: Callable[[str], object]) -> dict[str, int]:
    """``--size NAME=N`` (repeatable) as a dict; names are checked against ``known``."""
    out: dict[str, int] = {}
    for item in items or []:
        name, sep, value = (x.strip() for x in item.partition("="))
        if not sep or not value.isdigit():
            raise typer.BadParameter(f"{item!r}: expected NAME=N, e.g. bulk=500", param_hint="--size")
        try:
            known(name)
        except KeyError:
            raise typer.BadParameter(f"unknown size {name!r}", param_hint="--size") from None
        out[name] = int(value)
    return out


@bench_app.command("ssh")
def ssh(
    changes: Annotated[int, typer.Option(min=1, max=4000, help="changes to make in each mode")] = 100,
    out: Annotated[Path, typer.Option(help="where bench-ssh.json and bench-ssh.png go")] = Path("bench-results"),
    dir_: Annotated[Path, typer.Option("--dir", help="lab state directory")] = LAB_DIR,
) -> None:
    """N changes: one new SSH connection per change vs one persistent, batched session."""
    require("bench")
    from silonet.bench.ssh import main

    with _stoppable():  # the lab's daemons are stopped by its own finally (lab down)
        main(changes, out, dir_)


@bench_app.command("events")
def events(
    attaches: Annotated[int, typer.Option(min=1, max=2000, help="attaches, one at a time")] = 100,
    out: Annotated[Path, typer.Option(help="where bench-events.json and bench-events.png go")] = Path("bench-results"),
    work: Annotated[Path | None, typer.Option(help="the server's working directory (removed after) [default: a "
                                              "fresh /tmp/silonet-bench-events-*]")] = None,
) -> None:
    """Attach -> the event stream's and a webhook's news of it (memory driver), vs the attach's round trip."""
    require("bench")
    from silonet.bench.events import main

    with _stoppable(work, "silonet-bench-events-") as run:
        main(attaches, out, run.dir)


@bench_app.command("dataplane")
def dataplane(
    sizes: Annotated[str, typer.Option(help="write sizes in bytes (iperf3 -l): list or range")] = ",".join(
        map(str, (88, 100, 250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 7000, 8000))),
    pairs: Annotated[str, typer.Option(help="pair counts run in parallel: list or range, e.g. 1,10 or 1-10")] = "1-10",
    modes: Annotated[str, typer.Option(help="any of: ceiling, software, gateway")] = "ceiling,software,gateway",
    duration: Annotated[int | None, typer.Option(min=1, max=3600, help="seconds per iperf3 run [default: 3; 60 "
                                                  "with --paper]")] = None,
    repeat: Annotated[int, typer.Option(min=1, max=100, help="runs per point; the median is reported")] = 1,
    udp: Annotated[bool, typer.Option("--udp", help="UDP at full speed (-u -b 0), not TCP: packet rates")] = False,
    paper: Annotated[bool, typer.Option("--paper", help="the paper's matrix: 13 sizes x 1..10 pairs at 60 s")] = False,
    out: Annotated[Path, typer.Option(help="where results.csv/json and the PNGs go")] = Path("bench-results/dataplane"),
    inventory: Annotated[Path | None, typer.Option(help="real gateways: an inventory with a 'bench' section "
                                                   "naming the VM pairs (gateway mode only)")] = None,
    server: Annotated[str | None, typer.Option(help="URL of a running `silonet serve` (default: in-process)")] = None,
    keep_lab: Annotated[bool, typer.Option("--keep-lab", help="leave the bench lab up for the next run")] = False,
    dir_: Annotated[Path, typer.Option("--dir", help="lab state directory")] = LAB_DIR,
) -> None:
    """The paper's data-plane evaluation: iperf3 over VM pairs, ceiling vs software VXLAN vs gateways."""
    require("bench")
    from silonet.bench import dataplane as dp
    from silonet.bench.dpreport import PAPER_DURATION
    from silonet.bench.iperf import parse_list

    try:
        settings = dp.Settings(
            sizes=list(dp.PAPER_SIZES) if paper else parse_list(sizes, 1, 65000, "--sizes"),
            pairs=list(dp.PAPER_PAIRS) if paper else parse_list(pairs, 1, 99, "--pairs"),
            modes=[m.strip() for m in modes.split(",") if m.strip()],
            duration=duration or (PAPER_DURATION if paper else dp.DEFAULT_DURATION),
            repeat=repeat, udp=udp, out=out, lab_dir=dir_, keep_lab=keep_lab, inventory=inventory, server=server)
        with _stoppable():  # its lab, namespaces and iperf3s are removed by its own finally
            dp.main(settings)
    except (ValueError, dp.BenchError) as err:
        dp.console.print(f"[red]error:[/] {err}")
        raise typer.Exit(1) from None


@bench_app.command("control")
def control(
    quick: Annotated[bool, typer.Option("--quick", help="small sizes: keeps the code path alive (CI)")] = False,
    out: Annotated[Path, typer.Option(help="where control.json and control.png go")] = Path("bench-results/control"),
    only: Annotated[str | None, typer.Option(help="comma-separated sections: attach, forwarding, bulk, ssh, "
                                             "compile, converge, macs, scale [default: all]")] = None,
    work: Annotated[Path | None, typer.Option(help="scratch directory for the benchmark's servers, locked while "
                                              "it runs, removed after [default: a fresh "
                                              "/tmp/silonet-bench-control-*]")] = None,
    size: Annotated[list[str] | None, typer.Option(help="one size, NAME=N (repeatable), e.g. bulk=500 or "
                                                   "converge_gateways=40")] = None,
    dir_: Annotated[Path, typer.Option("--dir", help="lab state directory")] = LAB_DIR,
) -> None:
    """Control-plane figures against their targets: attach latency, bulk vs vtep-ctl, SSH, compile, converge.
    Ctrl-C or SIGTERM stops it and removes every process and file it started (exit 130 / 143)."""
    require("bench")
    from rich.markup import escape

    from silonet.bench import control as bc
    from silonet.bench import lifecycle

    sections = tuple(x.strip() for x in only.split(",") if x.strip()) if only else bc.SECTIONS
    sizes = _sizes(size, bc.Settings(quick=quick).size)
    try:
        bc.main(bc.Settings(quick=quick, out=out, work=work, sections=sections, lab_dir=dir_, sizes=sizes))
    except lifecycle.Stopped as stop:
        raise typer.Exit(stop.exit_code) from None
    except (ValueError, RuntimeError) as err:  # a busy work directory (WorkDirBusy) too
        bc.console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(1) from None
