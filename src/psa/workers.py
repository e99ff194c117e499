"""Several devices of one machine on one store: a worker process per device, each a sweep of the
same grid. The store's claims (psa.store.claims) share the grid out between them, so each trial
is trained once, by whichever worker claims it first (docs/DESIGN.md section 8)."""

import argparse
import multiprocessing
import sys
from copy import copy

from psa import PSAError, options
from psa.progress import make_console


def devices(text: str) -> list[str]:
    """The devices of --devices: a comma-separated list (a device may repeat: two workers on the
    CPU), or `all`, every CUDA GPU."""
    if text.strip() == "all":
        import torch

        count = torch.cuda.device_count()
        if not count:
            raise PSAError("--devices all: PyTorch sees no CUDA GPU")
        return [f"cuda:{i}" for i in range(count)]
    try:
        return [options.device_name(name.strip()) for name in text.split(",")]
    except argparse.ArgumentTypeError as error:
        raise PSAError(f"--devices {text}: {error}") from None


def _work(sweep, args, run_settings, device: str) -> None:
    """One worker: the sweep on its device; a PSAError is its one line and exit status 2."""
    args = copy(args)
    args.device, args.devices = device, None
    try:
        sweep(args, run_settings)
    except PSAError as error:
        make_console(stderr=True).print(f"[bold red]error ({device}):[/] {error}", soft_wrap=True)
        sys.exit(2)


def run(sweep, args, run_settings, names: list[str]) -> None:
    """sweep(args, run_settings) in a process per device of `names`, all on args.store; returns when all
    have ended. Spawned, not forked: a CUDA context does not survive a fork."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_work, args=(sweep, args, run_settings, name), name=name) for name in names]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [f"{p.name} (exit {p.exitcode})" for p in processes if p.exitcode]
    if failed:
        raise PSAError(f"{len(failed)} of {len(processes)} workers failed: {', '.join(failed)}")
