"""`psa bench --under-load`: how a sweep's training fares when other CPU-bound programs start after
it. psa picks its thread count when it starts and keeps it (float32 results depend on it), so a
sweep begun on a quiet machine keeps its threads when others arrive; how long its OpenMP threads
then spin at each barrier, burning the slices the other programs need, is libgomp's GOMP_SPINCOUNT
(psa.engine.memory.OPENMP). Each setting, a spin count under an engine (psa's fused CPU kernels,
or the eager path that PSA_FUSED=0 keeps), is timed quiet and beside `hogs` busy loops started
`delay` seconds in, the settings alternated in one run, and compared with the first as baseline."""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from psa.progress import make_console

HOG = "while True: pass"
TRAINED = re.compile(r"trained \d+ trials \(\d+ trial-loops\) in ([\d.]+) s")


@dataclass(frozen=True)
class Setting:
    spins: str | None  # GOMP_SPINCOUNT; None: libgomp's default
    fused: bool = True  # False: PSA_FUSED=0

    def __str__(self) -> str:
        spins = "libgomp's default" if self.spins is None else self.spins
        return f"{'fused' if self.fused else 'eager'}, GOMP_SPINCOUNT {spins}"


def timed_sweep(sweep: list[str], setting: Setting, hogs: int, delay: float) -> float:
    """Training seconds of one `psa sweep` (as it reports them) under `setting`, `hogs` busy loops
    starting `delay` seconds after it."""
    env = {name: value for name, value in os.environ.items() if name not in ("GOMP_SPINCOUNT", "PSA_FUSED")}
    if setting.spins is not None:
        env["GOMP_SPINCOUNT"] = setting.spins
    if not setting.fused:
        env["PSA_FUSED"] = "0"
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "psa", "sweep", *sweep, "--store", str(Path(folder) / "load.sqlite")]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        busy = []
        try:
            ends = time.monotonic() + delay
            while hogs and process.poll() is None and time.monotonic() < ends:
                time.sleep(0.1)
            busy = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
            out = process.communicate()[0]
        finally:
            for hog in busy:
                hog.kill()
                hog.wait()
    found = TRAINED.search(out)
    if process.returncode or not found:
        raise RuntimeError(f"the timed sweep failed ({process.returncode}):\n{out[-2000:]}")
    return float(found[1])


def under_load(sweep: list[str], settings: list[Setting], hogs: int, delay: float, repeats: int) -> dict:
    """{setting: {"quiet": [seconds], "loaded": [seconds]}}, the settings alternated `repeats` times."""
    times = {setting: {"quiet": [], "loaded": []} for setting in settings}
    console = make_console()
    for round_ in range(repeats):
        for setting in settings:
            for case, count in (("quiet", 0), ("loaded", hogs)):
                seconds = timed_sweep(sweep, setting, count, delay)
                times[setting][case].append(seconds)
                console.print(f"round {round_ + 1}: {setting}, {case}: {seconds:.1f} s")
    return times


def table(times: dict, hogs: int) -> Table:
    baseline = next(iter(times.values()))
    base_quiet = statistics.median(baseline["quiet"])
    out = Table(title=f"Training seconds, quiet and beside {hogs} CPU-bound programs started after it (median)")
    for column in ("setting", "quiet s", "loaded s", "loaded / quiet", "quiet / baseline quiet"):
        out.add_column(column, justify="left" if column == "setting" else "right")
    for setting, cases in times.items():
        quiet, loaded = statistics.median(cases["quiet"]), statistics.median(cases["loaded"])
        out.add_row(str(setting), f"{quiet:.1f}", f"{loaded:.1f}", f"{loaded / quiet:.2f}", f"{quiet / base_quiet:.2f}")
    return out
