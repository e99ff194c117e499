"""`psa export`: a results store written out in the study's formats (docs/DESIGN.md section 6).
Per family: the summary and trials tables, the study's convergence and LKG-growth tables (a row
per architecture and mode, the maximum over its trials), each trial's own series beside them
(`..._per_trial.md`), a CSV of every meta-loop, and a CSV of every trial.

Trials trained with different settings never share a table: a store that holds several is
exported one setting at a time, chosen by the filters."""

import csv
import json
from pathlib import Path

from psa import files
from psa.errors import PSAError
from psa.files import write_atomic
from psa.study import results, series
from psa.study.outputs import write_set
from psa.study.study import Study, open_study
from psa.sweeps.settings import COMPARABLE
from psa.trial.architecture import depth_and_width
from psa.trial.modes import MODES

TRIAL_FIELDS = [
    "family",
    "arch",
    "mode",
    "trial",
    "seed",
    "seeding",
    "base_seed",
    "meta_loops",
    "lr",
    "batch_size",
    "weight_decay",
    "dropout",
    "bounty",
    "bounty_loop",
    "test_accuracy",
    "device",
    "threads",
    "engine",
    "seconds",
    "job",
    "updated",
]
LOOP_FIELDS = [
    "family",
    "arch",
    "mode",
    "trial",
    "seed",
    "loop",
    "score",
    "lkg",
    "bounty",
    "improved",
    "ablated",
    "loss",
]


def select(rows: list[dict], wanted: dict, store: Path) -> list[dict]:
    """The rows of `wanted`'s settings (None: any), which must leave one setting per family."""
    rows = [r for r in rows if all(value is None or r[name] == value for name, value in wanted.items())]
    for family in sorted({r["family"] for r in rows}):
        kinds: dict[tuple, int] = {}
        for r in rows:
            if r["family"] == family:
                setting = tuple(r[name] for name in COMPARABLE)
                kinds[setting] = kinds.get(setting, 0) + 1
        if len(kinds) > 1:
            differ = [i for i, name in enumerate(COMPARABLE) if len({k[i] for k in kinds}) > 1]
            names = list(COMPARABLE)
            listed = "; ".join(
                ", ".join(f"{names[i]} {k[i]}" for i in differ) + f" ({n} trials)" for k, n in kinds.items()
            )
            raise PSAError(
                f"results store {store} holds {family} trials of {len(kinds)} settings ({listed}): "
                f"choose one with {', '.join(COMPARABLE[names[i]] for i in differ)}"
            )
    return rows


def shared_settings(rows: list[dict]) -> dict:
    """The `Settings:` line of an export: what its trials share."""
    first = rows[0]
    return {name.replace("_", "-"): first[name] for name in COMPARABLE}


def _write_csv(path: Path, fields: list[str], rows: list[dict]) -> Path:
    def write(tmp):
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    return write_atomic(path, write)


def records(frame) -> list[dict]:
    """A DataFrame's rows as dicts of Python values (None where a value is missing), its index as `id`."""
    native = frame.astype(object).where(frame.notna(), None)
    return [
        {"id": index, **dict(zip(native.columns, row))}
        for index, row in zip(native.index, native.itertuples(index=False))
    ]


def export(
    study: Study, out_dir: Path | str, archs: list[str] | None = None, wanted: dict | None = None, parquet: bool = False
) -> list[Path]:
    """Write every family's tables and CSVs of the study's complete trials; only `archs` ("L*W",
    in that order) if given, else every architecture by depth and width; only trials of the
    `wanted` settings. With `parquet`, also trials.parquet and loops.parquet of those trials, the
    study's columns and dtypes (docs/API.md) with the runs' manifests in their metadata."""
    out_dir = Path(out_dir)
    rows = select(records(study.complete), wanted or {}, study.source)
    if archs is not None:
        rows = [r for r in rows if r["arch"] in archs]
    if not rows:
        raise PSAError(f"results store {study.source} holds no complete trials of these architectures and settings yet")
    history = {trial_id: [] for trial_id in (r["id"] for r in rows)}
    for loop in records(study.loops):
        if loop["trial_id"] in history:
            history[loop["trial_id"]].append(loop | {"improved": int(loop["improved"])})
    written, loops = [], []
    for family in sorted({r["family"] for r in rows}):
        mine = sorted(
            (r for r in rows if r["family"] == family),
            key=lambda r: (
                archs.index(r["arch"]) if archs else depth_and_width(r["arch"]),
                MODES.index(r["mode"]),
                r["trial"],
            ),
        )
        trials: dict = {}
        curves = []
        for r in mine:
            cell = trials.setdefault(r["arch"], {}).setdefault(r["mode"], [])
            cell += [None] * (r["trial"] - len(cell))
            cell[r["trial"] - 1] = r["bounty"]
            mine_loops = sorted(history[r["id"]], key=lambda loop: loop["loop"])
            scores, lkgs = [loop["score"] for loop in mine_loops], [loop["lkg"] for loop in mine_loops]
            curves.append(series.Curve(r["arch"], r["mode"], r["trial"], scores, lkgs, r["test_accuracy"]))
            loops += mine_loops
        shared = shared_settings(mine)
        paths = {
            kind: results.default_path(kind, family, out_dir)
            for kind in (
                "summary",
                "trials",
                "trials_convergence",
                "trials_lkg_growth",
                "trials_convergence_per_trial",
                "trials_lkg_growth_per_trial",
            )
        }
        results.write_summary(paths["summary"], trials, family, shared)
        results.write_trials(paths["trials"], trials, family, shared)
        for rows_of, suffix in ((series.study(curves), ""), (series.per_trial(curves), "_per_trial")):
            convergence, growth = rows_of
            series.write_series(paths[f"trials_convergence{suffix}"], convergence, "convergence", family, shared)
            series.write_series(paths[f"trials_lkg_growth{suffix}"], growth, "lkg_growth", family, shared)
        written += paths.values()
        written.append(
            _write_csv(
                out_dir / f"psa_{family}_loops.csv", LOOP_FIELDS, [row for row in loops if row["family"] == family]
            )
        )
    ordered = sorted(rows, key=lambda r: (r["family"], depth_and_width(r["arch"]), MODES.index(r["mode"]), r["trial"]))
    written.append(_write_csv(out_dir / "psa_trials.csv", TRIAL_FIELDS, ordered))
    if parquet:
        ids = [r["id"] for r in ordered]
        written.append(_write_parquet(out_dir / "trials.parquet", study.trials.loc[ids], study.manifest))
        loops = study.loops[study.loops["trial_id"].isin(ids)]
        written.append(_write_parquet(out_dir / "loops.parquet", loops, study.manifest))
    return written


PARQUET_MANIFEST = b"psa.manifest"  # the key of the runs' manifests in a parquet file's metadata


def _write_parquet(path: Path, frame, manifest: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame)
    table = table.replace_schema_metadata(
        {**table.schema.metadata, PARQUET_MANIFEST: json.dumps(manifest, default=str).encode()}
    )
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def export_file(
    store: Path | str,
    out_dir: Path | str,
    archs: list[str] | None = None,
    wanted: dict | None = None,
    parquet: bool = False,
):
    """export() of the store at `store` (never created, never written) into `out_dir`, as one set
    (psa.study.outputs): a failure leaves the folder as it was."""
    files.output_folder(out_dir, "--out")
    if not Path(store).exists():
        raise PSAError(f"results store {store} not found; run `psa sweep` first")
    study = open_study(files.existing_file(store, "results store"))
    return write_set(out_dir, lambda staging: export(study, staging, archs, wanted, parquet), study.manifest)
