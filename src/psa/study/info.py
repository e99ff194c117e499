"""`psa info`: what a store holds and how it was made: the manifest of every run recorded in it,
and how far the grids those runs asked for got, per mode: trials complete, running (begun, not
finished) and missing (never begun)."""

import pandas as pd
from rich.table import Table

from psa.study.study import Study
from psa.sweeps.settings import RunSettings
from psa.trial.modes import MODES
from psa.trial.spec import trial_key

SHOWN = ("started", "ended", "psa_version", "git_commit", "python", "torch", "numpy", "cuda", "platform", "cpu", "gpu")
SHOWN += ("host", "device", "threads", "command")


def progress(study: Study) -> pd.DataFrame:
    """Per mode of the grids the runs asked for (their manifests' settings): trials complete,
    running and missing. A run recorded without settings (a psa from before manifests) asks for
    nothing: its trials count where they stand, none as missing."""
    status = {}
    for row in study.trials.itertuples():
        key = (row.family, row.arch, row.mode, int(row.trial) - 1, row.seed, row.meta_loops)
        status[key + (row.lr, row.batch_size, row.weight_decay, row.dropout)] = row.status
    wanted = {}
    for run in study.manifest:
        settings = run.get("settings") or {}
        if "archs" not in settings:
            continue
        grid = RunSettings.from_manifest(settings)
        for spec in grid.grid().specs:
            wanted[tuple(trial_key(spec, grid.meta_loops).values())] = spec.mode
    counts = {mode: {"complete": 0, "running": 0, "missing": 0} for mode in MODES}
    for key, mode in wanted.items():
        counts[mode][status.get(key, "missing")] += 1
    for key, state in status.items():
        if key not in wanted:
            counts[key[2]][state] += 1
    rows = [{"mode": mode, **count} for mode, count in counts.items() if sum(count.values())]
    return pd.DataFrame(rows, columns=["mode", "complete", "running", "missing"])


def runs_table(study: Study) -> Table:
    table = Table(title=f"{study.source}: {len(study.manifest)} recorded runs")
    table.add_column("")
    for k in range(len(study.manifest)):
        table.add_column(f"run {k + 1}", overflow="fold")
    for name in SHOWN:
        values = [run.get(name) for run in study.manifest]
        if name == "git_commit":
            values = [
                v and (v[:12] + (" (dirty)" if run.get("git_dirty") else "")) for v, run in zip(values, study.manifest)
            ]
        if any(v is not None for v in values):
            table.add_row(name, *("-" if v is None else str(v) for v in values))
    return table


def progress_table(study: Study) -> Table:
    found = progress(study)
    table = Table(title="Trials of the grids the runs asked for")
    for column in found.columns:
        table.add_column(column, justify="left" if column == "mode" else "right")
    for row in found.itertuples(index=False):
        table.add_row(*map(str, row))
    if len(found):
        table.add_row("all", *(str(found[c].sum()) for c in ("complete", "running", "missing")), style="bold")
    return table
