"""The results store: one SQLite file (standard library, WAL mode) holding sweeps, trials and
every meta-loop of every trial. A trial and all its loops are written in one transaction when it
completes, so a killed sweep (kill -9 included) loses at most the trials in flight and never
leaves a duplicate, a half-written trial or a corrupt store. psa.export turns it into the study's
markdown tables and a CSV."""

import json
import sqlite3
import time
from pathlib import Path

from psa import PSAError
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
