"""The store's file: its tables, the upgrade of an older schema, the key that identifies a trial,
and the one way a damaged file is reported."""

import functools
import sqlite3
import time
from pathlib import Path

from psa.errors import PSAError
from psa.trial.spec import KEY, TrialSpec, trial_key

VERSION = 3

SCHEMA = f"""
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
    seeding TEXT NOT NULL DEFAULT 'paired', base_seed INTEGER,
    loops_done INTEGER NOT NULL DEFAULT 0, lkg_score REAL,
    job TEXT, owner TEXT, heartbeat REAL,
    threads INTEGER, engine INTEGER,
    UNIQUE ({", ".join(KEY)})
);
CREATE TABLE IF NOT EXISTS loops (
    trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    loop INTEGER NOT NULL,
    score REAL NOT NULL, lkg REAL NOT NULL, bounty REAL NOT NULL,
    improved INTEGER NOT NULL, ablated TEXT,
    sweep_id INTEGER, loss REAL,
    PRIMARY KEY (trial_id, loop)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS weights (
    trial_id INTEGER PRIMARY KEY REFERENCES trials(id) ON DELETE CASCADE,
    dtype TEXT NOT NULL,
    lkg BLOB NOT NULL
);
"""
# What a store of an older schema lacks, per version it moves to; the columns are added on open.
UPGRADES = {
    2: [
        "ALTER TABLE trials ADD COLUMN seeding TEXT NOT NULL DEFAULT 'paired'",
        "ALTER TABLE trials ADD COLUMN base_seed INTEGER",
        "ALTER TABLE trials ADD COLUMN loops_done INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE trials ADD COLUMN lkg_score REAL",
        "ALTER TABLE trials ADD COLUMN job TEXT",
        "ALTER TABLE trials ADD COLUMN owner TEXT",
        "ALTER TABLE trials ADD COLUMN heartbeat REAL",
        "ALTER TABLE loops ADD COLUMN sweep_id INTEGER",
        "UPDATE trials SET loops_done = meta_loops WHERE status = 'complete'",
    ],
    3: [
        # Threads and engine version of the run that trained a trial (unknown before): float32
        # results depend on both, so a resume must not mix them.
        "ALTER TABLE trials ADD COLUMN threads INTEGER",
        "ALTER TABLE trials ADD COLUMN engine INTEGER",
        "ALTER TABLE loops ADD COLUMN loss REAL",
    ],
}

WHERE_KEY = " AND ".join(f"{column} = ?" for column in KEY)  # a trial's row (psa.trial.spec.KEY)


def key(spec: TrialSpec, meta_loops: int) -> tuple:
    """The values of WHERE_KEY's parameters."""
    return tuple(trial_key(spec, meta_loops).values())


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def damaged(path: Path, error: Exception) -> PSAError:
    return PSAError(
        f"results store {path} is damaged or unreadable ({error}); move it aside and run again to start a new store"
    )


def guarded(method):
    """A damaged store file is a PSAError that names it, whatever the query met."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.IntegrityError):
                raise
            raise damaged(self.path, error) from None

    return run


def connect(path: Path, check: bool) -> sqlite3.Connection:
    """The store's connection, its schema brought up to VERSION in one transaction."""
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    if check and db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        raise sqlite3.DatabaseError("integrity check failed")
    with db:
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version > VERSION:
            raise PSAError(f"results store {path} has schema {version}, newer than this psa's {VERSION}: upgrade psa")
        if "trials" in tables:
            # A schema-1 store says user_version 0.
            for target in range(max(version, 1) + 1, VERSION + 1):
                for statement in UPGRADES[target]:
                    db.execute(statement)
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {VERSION}")
    return db
