"""The results store: one SQLite file (standard library, WAL mode) holding sweeps, trials and
every meta-loop of every trial. A trial and all its loops are written in one transaction when it
completes, so a killed sweep (kill -9 included) loses at most the trials in flight and never
leaves a duplicate, a half-written trial or a corrupt store. `psa export` turns it into the
study's markdown tables and a CSV."""

import csv
import json
import sqlite3
import time
from pathlib import Path

from psa import PSAError
from psa.architecture import Architecture
from psa.trial import LoopRecord, TrialResult, TrialSpec

DEFAULT_STORE = "results/psa.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    command TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    sweep_id INTEGER REFERENCES sweeps(id),
    family TEXT NOT NULL, arch TEXT NOT NULL, mode TEXT NOT NULL, trial INTEGER NOT NULL,
    seed INTEGER NOT NULL, meta_loops INTEGER NOT NULL,
    lr REAL NOT NULL, batch_size INTEGER NOT NULL, weight_decay REAL NOT NULL, dropout REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete')),
    bounty REAL, bounty_loop INTEGER, test_accuracy REAL,
    device TEXT, seconds REAL, updated TEXT NOT NULL,
    UNIQUE (family, arch, mode, trial, seed, meta_loops, lr, batch_size, weight_decay, dropout)
);
CREATE TABLE IF NOT EXISTS loops (
    trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    loop INTEGER NOT NULL,
    score REAL NOT NULL, lkg REAL NOT NULL, bounty REAL NOT NULL,
    improved INTEGER NOT NULL, ablated TEXT,
    PRIMARY KEY (trial_id, loop)
) WITHOUT ROWID;
"""

_KEY = "family = ? AND arch = ? AND mode = ? AND trial = ? AND seed = ? AND meta_loops = ? " \
       "AND lr = ? AND batch_size = ? AND weight_decay = ? AND dropout = ?"


def _key(spec: TrialSpec, meta_loops: int) -> tuple:
    h = spec.hyper
    return (spec.family, str(spec.arch), spec.mode, spec.trial, spec.seed, meta_loops,
            h.lr, h.batch_size, h.weight_decay, h.dropout)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


class Store:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as error:
            raise PSAError(f"results store {self.path} cannot be opened ({error}); "
                           f"move it aside and run again to start a new store") from None

    def close(self) -> None:
        self.db.close()

    def start_sweep(self, command: str, settings: dict) -> int:
        cursor = self.db.execute("INSERT INTO sweeps (started, command, settings) VALUES (?, ?, ?)",
                                 (_now(), command, json.dumps(settings)))
        return cursor.lastrowid

    def is_complete(self, spec: TrialSpec, meta_loops: int) -> bool:
        row = self.db.execute(f"SELECT 1 FROM trials WHERE {_KEY} AND status = 'complete'",
                              _key(spec, meta_loops)).fetchone()
        return row is not None

    def mark_running(self, sweep_id: int, specs: list[TrialSpec], meta_loops: int, device: str) -> None:
        """Record trials as in flight; a later run finds them 'running' and trains them again."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for spec in specs:
                self.db.execute(
                    "INSERT INTO trials (sweep_id, family, arch, mode, trial, seed, meta_loops, lr, "
                    "batch_size, weight_decay, dropout, status, device, updated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?) "
                    "ON CONFLICT DO UPDATE SET sweep_id = excluded.sweep_id, device = excluded.device, "
                    "updated = excluded.updated WHERE status = 'running'",
                    (sweep_id, *_key(spec, meta_loops), device, _now()))

    def record(self, sweep_id: int, result: TrialResult, meta_loops: int) -> None:
        """Write a finished trial and all its loops in one transaction."""
        spec = result.spec
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute(f"SELECT id, status FROM trials WHERE {_KEY}", _key(spec, meta_loops)).fetchone()
            if row and row[1] == "complete":
                return
            if row:
                self.db.execute("DELETE FROM trials WHERE id = ?", (row[0],))
            trial_id = self.db.execute(
                "INSERT INTO trials (sweep_id, family, arch, mode, trial, seed, meta_loops, lr, batch_size, "
                "weight_decay, dropout, status, bounty, bounty_loop, test_accuracy, device, seconds, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?, ?)",
                (sweep_id, *_key(spec, meta_loops), result.bounty, result.bounty_loop,
                 result.test_accuracy, result.device, result.seconds, _now())).lastrowid
            self.db.executemany(
                "INSERT INTO loops (trial_id, loop, score, lkg, bounty, improved, ablated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(trial_id, r.loop, r.score, r.lkg_score, r.bounty, int(r.improved), r.ablated) for r in result.history])

    def completed(self, family: str | None = None) -> list[dict]:
        """Complete trials as dicts; where one (family, arch, mode, trial) was run with several
        settings, the one with the most meta-loops (then the newest) stands for it."""
        rows = self.db.execute(
            "SELECT * FROM trials WHERE status = 'complete' AND (? IS NULL OR family = ?) "
            "ORDER BY meta_loops DESC, updated DESC, id DESC", (family, family))
        names = [d[0] for d in rows.description]
        chosen = {}
        for values in rows.fetchall():
            row = dict(zip(names, values))
            chosen.setdefault((row["family"], row["arch"], row["mode"], row["trial"]), row)
        return list(chosen.values())

    def history(self, trial_id: int) -> list[LoopRecord]:
        rows = self.db.execute("SELECT loop, score, lkg, bounty, improved, ablated FROM loops "
                               "WHERE trial_id = ? ORDER BY loop", (trial_id,))
        return [LoopRecord(loop, score, lkg, bounty, bool(improved), ablated)
                for loop, score, lkg, bounty, improved, ablated in rows]

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall())


# ----------------------------------------------------------------------------- psa export

def _arch_order(arch: str):
    parsed = Architecture.parse(arch)
    return (parsed.depth, -max(parsed.widths), arch)


def export(store: Store, out_dir: Path, configs: list[str] | None = None) -> list[Path]:
    """Write summary, trials, convergence and LKG-growth tables per family, plus a CSV."""
    from psa import results
    from psa.modes import MODES

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = store.completed()
    if not rows:
        raise PSAError(f"results store {store.path} holds no complete trials yet")
    written = []
    for family in sorted({r["family"] for r in rows}):
        mine = [r for r in rows if r["family"] == family]
        archs = sorted({r["arch"] for r in mine}, key=lambda a: (configs.index(a) if configs and a in configs
                                                                  else len(configs or []), _arch_order(a)))
        trials: dict = {arch: {} for arch in archs}
        series_conv, series_growth = [], []
        for arch in archs:
            for mode in MODES:
                cell = sorted((r for r in mine if r["arch"] == arch and r["mode"] == mode), key=lambda r: r["trial"])
                if not cell:
                    continue
                count = cell[-1]["trial"] + 1
                trials[arch][mode] = [None] * count
                for r in cell:
                    trials[arch][mode][r["trial"]] = r["bounty"]
                    history = store.history(r["id"])
                    scores = [h.score for h in history]
                    growth = [0.0] + [b.lkg_score - a.lkg_score for a, b in zip(history, history[1:])]
                    series_conv.append(results.SeriesRow(arch, mode, r["trial"] + 1, scores, r["test_accuracy"]))
                    series_growth.append(results.SeriesRow(arch, mode, r["trial"] + 1, growth, r["test_accuracy"]))
        paths = {kind: out_dir / f"psa_{family}_{kind}.md" for kind in
                 ("summary", "trials", "trials_convergence", "trials_lkg_growth")}
        results.write_summary(paths["summary"], trials, family)
        results.write_trials(paths["trials"], trials, family)
        results.write_series(paths["trials_convergence"], series_conv, "convergence", family)
        results.write_series(paths["trials_lkg_growth"], series_growth, "lkg_growth", family)
        written += paths.values()
    csv_path = out_dir / "psa_trials.csv"
    fields = ["family", "arch", "mode", "trial", "seed", "meta_loops", "lr", "batch_size", "weight_decay",
              "dropout", "bounty", "bounty_loop", "test_accuracy", "device", "seconds", "updated"]
    ordered = sorted(rows, key=lambda r: (r["family"], _arch_order(r["arch"]), MODES.index(r["mode"]), r["trial"]))

    def write_csv(tmp):
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(ordered)

    results.write_atomic(csv_path, write_csv)
    return written + [csv_path]


def run_export(args) -> None:
    from rich.console import Console

    from psa.architecture import read_configurations

    if not Path(args.store).is_file():
        raise PSAError(f"results store {args.store} not found; run `psa sweep` first")
    configs = [str(a) for a in read_configurations(args.configs)] if args.configs else None
    store = Store(args.store)
    try:
        for path in export(store, Path(args.out), configs):
            Console().print(f"wrote {path}")
    finally:
        store.close()


def configure_export(parser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"results store (default: {DEFAULT_STORE})")
    parser.add_argument("--out", default="results", help="output folder (default: results/)")
    parser.add_argument("--configs", default=None, help="configurations file giving the row order")
    parser.set_defaults(func=run_export)
