"""Several devices of one machine on one store: a worker process per device, each running the same
grid through the one run path (psa.sweeps.sweep.run_grid). The store's claims (psa.store.claims)
share the grid out between them, so each trial is trained once, by whichever worker claims it first
(docs/DESIGN.md section 8)."""

import multiprocessing
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

from psa.errors import PSAError, Stopped
from psa.progress import make_console
from psa.sweeps.settings import RunSettings
from psa.sweeps.stopping import stopping
from psa.sweeps.sweep import Machine, run_grid


def devices(text: str) -> list[str]:
    """The devices of --devices: a comma-separated list (a device may repeat: two workers on the
    CPU), or `all`, every CUDA GPU."""
    if text.strip() == "all":
        import torch

        count = torch.cuda.device_count()
        if not count:
            raise PSAError("--devices all: PyTorch sees no CUDA GPU")
        return [f"cuda:{i}" for i in range(count)]
    names = [name.strip() for name in text.split(",")]
    wrong = [name for name in names if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", name)]
    if wrong:
        raise PSAError(f"--devices {text}: expected cpu, mps, cuda or cuda:N, not {wrong[0]!r}")
    return names


def _work(run: RunSettings, store: Path, machine: Machine, command: str, wait: bool) -> None:
    """One worker: the grid on its device; a PSAError is its one line and exit status 2, a stop
    request (SIGTERM, Ctrl-C) 128 + the signal's number."""
    try:
        run_grid(run, store, machine, command=command, wait=wait)
    except PSAError as error:
        make_console(stderr=True).print(f"[bold red]error ({machine.device}):[/] {error}", soft_wrap=True)
        sys.exit(2)
    except Stopped as stop:
        sys.exit(128 + stop.signum)


def run(
    run_settings: RunSettings, store: Path, machine: Machine, names: list[str], command: str, wait: bool = True
) -> None:
    """run_grid in a process per device of `names`, all on `store`; returns when all have ended.
    Spawned, not forked: a CUDA context does not survive a fork. A signal that asks this process to
    stop is passed on to the workers, whose end it then waits for."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_work, args=(run_settings, store, replace(machine, device=name), command, wait), name=name
        )
        for name in names
    ]
    with stopping() as stop:
        for process in processes:
            process.start()
        try:
            while any(process.is_alive() for process in processes):
                stop.check()
                for process in processes:
                    process.join(timeout=0.5)
        except Stopped as stopped:
            for process in processes:
                if process.is_alive():
                    os.kill(process.pid, stopped.signum)
            for process in processes:
                process.join()
            raise
    failed = [f"{p.name} (exit {p.exitcode})" for p in processes if p.exitcode]
    if failed:
        raise PSAError(f"{len(failed)} of {len(processes)} workers failed: {', '.join(failed)}")
