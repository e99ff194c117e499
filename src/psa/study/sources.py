"""Where a study is read from, each into the same columns (docs/API.md): a results store, a folder
of psa's exports, or the published study shipped with psa (the study's own markdown tables, which
hold bounties and study rows but no per-trial loops). One reading of a store serves the Python API,
the exports and every analysis."""

import csv
import dataclasses
import functools
from pathlib import Path

import pandas as pd

from psa.errors import PSAError
from psa.published import PUBLISHED
from psa.published import results as published_table
from psa.store import RUN_KEYS, Store
from psa.study.outputs import read_manifest
from psa.study.results import default_path, read_trials
from psa.study.series import SeriesRow, read_series
from psa.trial.architecture import FAMILIES, Architecture
from psa.trial.modes import MODES
from psa.trial.spec import Hyper
from psa.trial.topology import parameter_count

# The columns of Study.trials and Study.loops, with their dtypes (docs/API.md says what each holds).
TRIAL_COLUMNS = {
    "family": "string",
    "arch": "string",
    "depth": "Int64",
    "width": "Int64",
    "parameters": "Int64",
    "mode": "string",
    "trial": "Int64",
    "seed": "Int64",
    "seeding": "string",
    "base_seed": "Int64",
    "meta_loops": "Int64",
    "lr": "float64",
    "batch_size": "Int64",
    "weight_decay": "float64",
    "dropout": "float64",
    "status": "string",
    "bounty": "float64",
    "bounty_loop": "Int64",
    "lkg": "float64",
    "test_accuracy": "float64",
    "loops_done": "Int64",
    "seconds": "float64",
    "device": "string",
    "threads": "Int64",
    "engine": "Int64",
    "job": "string",
    "updated": "string",
}
LOOP_COLUMNS = {
    "trial_id": "Int64",
    "family": "string",
    "arch": "string",
    "mode": "string",
    "trial": "Int64",
    "seed": "Int64",
    "loop": "Int64",
    "score": "float64",
    "lkg": "float64",
    "bounty": "float64",
    "improved": "boolean",
    "ablated": "string",
    "loss": "float64",
}


def frame(rows: list[dict], columns: dict[str, str], index: list[int] | None = None) -> pd.DataFrame:
    """Rows as a DataFrame of exactly these columns and dtypes (absent values: NA)."""
    data = pd.DataFrame.from_records(rows, columns=list(columns), index=index)
    out = pd.DataFrame(index=data.index)
    for name, dtype in columns.items():
        out[name] = data[name].astype("object").where(data[name].notna(), None).astype(dtype)
    out.index.name = "trial_id" if index is not None else None
    return out


@functools.cache  # a study has thousands of trials of a hundred architectures at most
def shape(arch: str, family: str) -> dict:
    parsed = Architecture.parse(arch)
    return {"depth": parsed.depth, "width": max(parsed.widths), "parameters": parameter_count(parsed, family)}


def from_store(path: Path | str) -> tuple[pd.DataFrame, pd.DataFrame, list[dict], list[SeriesRow]]:
    """Every trial of the store (complete or running), every loop, and every run's manifest, read
    from a copy of it (Store.read): never written, whole even while a sweep writes it."""
    store = Store.read(path)
    try:
        rows = store.db.execute("SELECT * FROM trials ORDER BY id")
        names = [d[0] for d in rows.description]
        trials = [dict(zip(names, values)) for values in rows.fetchall()]
        loops = store.db.execute(
            "SELECT trial_id, loop, score, lkg, bounty, improved, ablated, loss FROM loops ORDER BY trial_id, loop"
        ).fetchall()
        runs = store.runs()
    finally:
        store.close()
    by_id = {}
    for row in trials:
        row |= {"trial": row["trial"] + 1, "lkg": row["lkg_score"], **shape(row["arch"], row["family"])}
        by_id[row["id"]] = row
    loop_rows = [
        {
            "trial_id": trial_id,
            **{name: by_id[trial_id][name] for name in ("family", "arch", "mode", "trial", "seed")},
            "loop": loop,
            "score": score,
            "lkg": lkg,
            "bounty": bounty,
            "improved": bool(improved),
            "ablated": ablated,
            "loss": loss,
        }
        for trial_id, loop, score, lkg, bounty, improved, ablated, loss in loops
    ]
    return frame(trials, TRIAL_COLUMNS, [row["id"] for row in trials]), frame(loop_rows, LOOP_COLUMNS), runs, []


def from_exports(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[dict], list[SeriesRow]]:
    """psa's exports in a folder: its CSVs of trials and loops where present (every column), else
    its markdown tables (bounties and convergence rows only, as the published study's)."""
    runs = read_manifest(folder).get("runs", [])
    csv_trials = folder / "psa_trials.csv"
    if not csv_trials.is_file():
        return (*from_tables(folder), runs, series_of(folder))
    trials = read_csv(csv_trials)
    for row in trials:
        row |= {"status": "complete", "lkg": None, "loops_done": row["meta_loops"], **shape(row["arch"], row["family"])}
    ids = {key(row): k for k, row in enumerate(trials)}
    loops = []
    for family in FAMILIES:
        path = folder / f"psa_{family}_loops.csv"
        if path.is_file():
            for row in read_csv(path):
                trial_id = ids.get(key(row))
                row |= {"trial_id": trial_id, "improved": row["improved"] in ("1", "True")}
                loops.append(row)
                if trial_id is not None:
                    trials[trial_id]["lkg"] = row["lkg"]  # the last loop's LKG: the final one
    return frame(trials, TRIAL_COLUMNS, list(range(len(trials)))), frame(loops, LOOP_COLUMNS), runs, []


def key(row: dict) -> tuple:
    return row["family"], row["arch"], row["mode"], str(row["trial"]), str(row["seed"])


def read_csv(path: Path) -> list[dict]:
    """A CSV's rows, empty cells as None and numbers as numbers."""
    with open(path, newline="") as handle:
        return [{name: number(value) for name, value in row.items()} for row in csv.DictReader(handle)]


def number(text: str):
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def from_tables(folder: Path, table: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trials from the study's markdown trials tables (the folder's, or the one `table`): a row per
    trial and mode that has a bounty."""
    rows = []
    for family in FAMILIES:
        found = table if table is not None else default_path("trials", family, folder)
        if table is not None and family != family_of(table):
            continue
        if found.is_file():
            for arch, by_mode in read_trials(found).items():
                for mode in MODES:
                    for k, bounty in enumerate(by_mode.get(mode, []), start=1):
                        if bounty is not None:
                            rows.append(
                                {"family": family, "arch": arch, "mode": mode, "trial": k, "bounty": bounty}
                                | {"status": "complete", **shape(arch, family)}
                            )
    if not rows:
        raise PSAError(f"{folder} holds no psa exports (no psa_trials.csv, no psa_<family>_trials.md)")
    return frame(rows, TRIAL_COLUMNS, list(range(len(rows)))), frame([], LOOP_COLUMNS)


def family_of(table: Path) -> str:
    """The family a psa_<family>_trials.md table names (any other name: the study's, SimpleMLP)."""
    return next((family for family in FAMILIES if table.name.startswith(f"psa_{family}_")), FAMILIES[0])


def from_table_file(table: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[dict], list[SeriesRow]]:
    """A trials table on its own (compare's --trials-file), with the convergence table beside it:
    psa_<family>_trials.md -> psa_<family>_trials_convergence.md."""
    trials, loops = from_tables(table.parent, table)
    beside = table.with_name(f"{table.stem}_convergence{table.suffix}")
    return trials, loops, [], read_series(beside) if beside.is_file() else []


def series_of(folder: Path) -> list[SeriesRow]:
    """The convergence rows the folder's tables hold, per trial where it has them, else study rows."""
    found = []
    for family in FAMILIES:
        for kind in ("trials_convergence_per_trial", "trials_convergence"):
            table = default_path(kind, family, folder)
            if table.is_file():
                found += read_series(table)
                break
    return found


def published() -> tuple[pd.DataFrame, pd.DataFrame, list[dict], list[SeriesRow]]:
    """The published study: its trials table, its convergence table (study rows), no loops."""
    folder = published_table("trials").parent
    trials, loops = from_tables(folder)
    runs = [
        dict.fromkeys(RUN_KEYS)
        | {"command": "the published PSA SimpleMLP study, as shipped with psa (psa/published)", "settings": PAPER}
    ]
    return trials, loops, runs, read_series(published_table("trials_convergence"))


# The published study's settings (docs/DESIGN.md section 1), as a manifest records a run's.
PAPER = {"family": "simplemlp", "trials": 10, "meta_loops": 100, "seeding": "independent"}
PAPER |= {"modes": list(MODES), "hyper": dataclasses.asdict(Hyper())}


def read(source: Path | str) -> tuple[pd.DataFrame, pd.DataFrame, list[dict], list[SeriesRow]]:
    """trials, loops, manifest and convergence rows of a store, an export folder or 'published'."""
    if str(source) == PUBLISHED:
        return published()
    path = Path(source)
    if path.is_dir():
        return from_exports(path)
    if not path.exists():
        raise PSAError(f"no study at {path}: give a results store, a folder of psa's exports, or {PUBLISHED}")
    if path.suffix == ".md":
        return from_table_file(path)
    return from_store(path)
