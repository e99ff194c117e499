"""The results store: one SQLite file (standard library, WAL mode) holding sweeps, trials, every
meta-loop of every trial, and the LKG weights of the trials in flight.

Durability: a sweep commits a stack's progress after a meta-loop (or a few, bounded by time) in
one transaction: the new loop records, each trial's LKG score and bounty, and the LKG weights
that changed. A killed sweep (kill -9 included) loses at most the loops since that commit, and
the next run resumes each trial there, with the same results as an unbroken run. A trial's
weights are dropped when it completes.

Sharing: a sweep claims the trials it trains (an owner and a heartbeat on each). A claim whose
owner is gone (on this host: its process has ended; anywhere: no heartbeat for LEASE seconds) is
taken over, so several sweeps on one store finish a grid once between them."""

import functools
import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from psa import PSAError
from psa.files import write_atomic
from psa.trial import LoopRecord, TrialSpec

DEFAULT_STORE = "results/psa.sqlite"
LEASE = 60.0  # seconds without a heartbeat after which another sweep may take a claim over
VERSION = 2

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
    seeding TEXT NOT NULL DEFAULT 'paired', base_seed INTEGER,
    loops_done INTEGER NOT NULL DEFAULT 0, lkg_score REAL,
    job TEXT, owner TEXT, heartbeat REAL,
    UNIQUE (family, arch, mode, trial, seed, meta_loops, lr, batch_size, weight_decay, dropout)
);
CREATE TABLE IF NOT EXISTS loops (
    trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    loop INTEGER NOT NULL,
    score REAL NOT NULL, lkg REAL NOT NULL, bounty REAL NOT NULL,
    improved INTEGER NOT NULL, ablated TEXT,
    sweep_id INTEGER,
    PRIMARY KEY (trial_id, loop)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS weights (
    trial_id INTEGER PRIMARY KEY REFERENCES trials(id) ON DELETE CASCADE,
    dtype TEXT NOT NULL,
    lkg BLOB NOT NULL
);
"""
# What a store of psa 0.1 (schema 1) lacks; the columns are added on open.
UPGRADE = [
    "ALTER TABLE trials ADD COLUMN seeding TEXT NOT NULL DEFAULT 'paired'",
    "ALTER TABLE trials ADD COLUMN base_seed INTEGER",
    "ALTER TABLE trials ADD COLUMN loops_done INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE trials ADD COLUMN lkg_score REAL",
    "ALTER TABLE trials ADD COLUMN job TEXT",
    "ALTER TABLE trials ADD COLUMN owner TEXT",
    "ALTER TABLE trials ADD COLUMN heartbeat REAL",
    "ALTER TABLE loops ADD COLUMN sweep_id INTEGER",
    "UPDATE trials SET loops_done = meta_loops WHERE status = 'complete'",
]

KEY_COLUMNS = ("family", "arch", "mode", "trial", "seed", "meta_loops", "lr", "batch_size", "weight_decay", "dropout")
_KEY = " AND ".join(f"{column} = ?" for column in KEY_COLUMNS)


def key(spec: TrialSpec, meta_loops: int) -> tuple:
    h = spec.hyper
    return (
        spec.family,
        str(spec.arch),
        spec.mode,
        spec.trial,
        spec.seed,
        meta_loops,
        h.lr,
        h.batch_size,
        h.weight_decay,
        h.dropout,
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def owner_id() -> str:
    """Who claims: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(owner: str | None, heartbeat: float | None) -> bool:
    """Whether a claim still holds: its owner's heartbeat is recent and, on this host, its
    process still runs."""
    if owner is None or heartbeat is None or time.time() - heartbeat > LEASE:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


@dataclass
class Progress:
    """What the store holds of a trial in flight: where to resume it."""

    trial_id: int
    loops_done: int
    lkg_score: float
    bounty: float
    bounty_loop: int
    dtype: str | None  # of the saved LKG weights; None when no loop is committed
    lkg: bytes | None


def _guarded(method):
    """A damaged store file is a PSAError that names it, whatever the query met."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.IntegrityError):
                raise
            raise PSAError(
                f"results store {self.path} is damaged or unreadable ({error}); "
                f"move it aside and run again to start a new store"
            ) from None

    return run


class Store:
    @_guarded
    def __init__(self, path: Path | str, check: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        if check and self.db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("integrity check failed")
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if version < VERSION and "trials" in tables:
                for statement in UPGRADE:
                    self.db.execute(statement)
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {VERSION}")

    def close(self) -> None:
        self.db.close()

    @_guarded
    def snapshot(self, path: Path | str) -> Path:
        """A consistent copy of the store as one plain file (no WAL beside it), atomically replacing
        `path`: what a folder synced file by file (SageMaker's checkpoints) may hold."""

        def copy(tmp):
            target = sqlite3.connect(tmp)
            try:
                self.db.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")
            finally:
                target.close()

        return write_atomic(path, copy)

    @_guarded
    def start_sweep(self, command: str, settings: dict) -> int:
        cursor = self.db.execute(
            "INSERT INTO sweeps (started, command, settings) VALUES (?, ?, ?)", (_now(), command, json.dumps(settings))
        )
        return cursor.lastrowid

    @_guarded
    def status(self, specs: list[TrialSpec], meta_loops: int) -> dict[TrialSpec, tuple[str, int]]:
        """(status, loops done) of each spec the store knows."""
        out = {}
        for spec in specs:
            row = self.db.execute(
                f"SELECT status, loops_done FROM trials WHERE {_KEY}", key(spec, meta_loops)
            ).fetchone()
            if row:
                out[spec] = row
        return out

    def is_complete(self, spec: TrialSpec, meta_loops: int) -> bool:
        return self.status([spec], meta_loops).get(spec, ("running",))[0] == "complete"

    @_guarded
    def claim(
        self, sweep_id: int, specs: list[TrialSpec], meta_loops: int, origin: tuple[str, int], device: str, owner: str
    ) -> dict[TrialSpec, int] | None:
        """Claim every trial of `specs` for `owner`, all or none: None if one is complete or
        another live sweep holds it. `origin`: the grid's (seeding, base seed). Returns each
        spec's trial id."""
        ids, now = {}, time.time()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for spec in specs:
                row = self.db.execute(
                    f"SELECT id, status, owner, heartbeat FROM trials WHERE {_KEY}", key(spec, meta_loops)
                ).fetchone()
                if row and (row[1] == "complete" or (row[2] != owner and _alive(row[2], row[3]))):
                    self.db.execute("ROLLBACK")
                    return None
                if row:
                    self.db.execute(
                        "UPDATE trials SET sweep_id = ?, device = ?, owner = ?, heartbeat = ?, updated = ? "
                        "WHERE id = ?",
                        (sweep_id, device, owner, now, _now(), row[0]),
                    )
                    ids[spec] = row[0]
                else:
                    ids[spec] = self.db.execute(
                        f"INSERT INTO trials (sweep_id, {', '.join(KEY_COLUMNS)}, status, seeding, base_seed, device, "
                        "owner, heartbeat, updated) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                        (sweep_id, *key(spec, meta_loops), *origin, device, owner, now, _now()),
                    ).lastrowid
        return ids

    @_guarded
    def heartbeat(self, owner: str) -> None:
        with self.db:
            self.db.execute(
                "UPDATE trials SET heartbeat = ? WHERE owner = ? AND status = 'running'", (time.time(), owner)
            )

    @_guarded
    def release(self, owner: str | None = None) -> None:
        """Give up `owner`'s claims at once (a sweep that stops), so others need not wait a lease;
        without an owner, every claim (a store restored from a copy, whose sweeps are gone)."""
        with self.db:
            self.db.execute(
                "UPDATE trials SET owner = NULL, heartbeat = NULL "
                "WHERE (? IS NULL OR owner = ?) AND status = 'running'",
                (owner, owner),
            )

    @_guarded
    def progress(self, trial_id: int) -> Progress:
        loops_done, lkg_score, bounty, bounty_loop = self.db.execute(
            "SELECT loops_done, lkg_score, bounty, bounty_loop FROM trials WHERE id = ?", (trial_id,)
        ).fetchone()
        saved = self.db.execute("SELECT dtype, lkg FROM weights WHERE trial_id = ?", (trial_id,)).fetchone()
        if loops_done and saved is None:
            raise sqlite3.DatabaseError(f"trial {trial_id} has {loops_done} loops but no saved weights")
        return Progress(
            trial_id,
            loops_done,
            lkg_score if loops_done else -1.0,
            bounty if loops_done else -1.0,
            bounty_loop or 0,
            *(saved or (None, None)),
        )

    @_guarded
    def commit(self, sweep_id: int, owner: str, trials: list[dict]) -> bool:
        """One transaction for a group's progress: per trial a dict with trial_id, the records since
        the last commit, lkg_score, bounty, bounty_loop, the seconds spent since, and dtype and lkg
        (the weights' bytes) where the LKG changed. False, with nothing written, if another sweep
        has taken the claim over."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for trial in trials:
                records = trial["records"]
                updated = self.db.execute(
                    "UPDATE trials SET loops_done = ?, lkg_score = ?, bounty = ?, bounty_loop = ?, "
                    "seconds = COALESCE(seconds, 0) + ?, heartbeat = ?, updated = ? "
                    "WHERE id = ? AND owner = ? AND status = 'running'",
                    (
                        records[-1].loop,
                        trial["lkg_score"],
                        trial["bounty"],
                        trial["bounty_loop"],
                        trial["seconds"],
                        time.time(),
                        _now(),
                        trial["trial_id"],
                        owner,
                    ),
                ).rowcount
                if not updated:
                    self.db.execute("ROLLBACK")
                    return False
                self.db.executemany(
                    "INSERT INTO loops (trial_id, loop, score, lkg, bounty, improved, ablated, sweep_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            trial["trial_id"],
                            r.loop,
                            r.score,
                            r.lkg_score,
                            r.bounty,
                            int(r.improved),
                            r.ablated,
                            sweep_id,
                        )
                        for r in records
                    ],
                )
                if trial.get("lkg") is not None:
                    self.db.execute(
                        "INSERT OR REPLACE INTO weights (trial_id, dtype, lkg) VALUES (?, ?, ?)",
                        (trial["trial_id"], trial["dtype"], trial["lkg"]),
                    )
        return True

    @_guarded
    def complete(self, owner: str, trials: list[dict]) -> None:
        """Trials whose last loop is committed: their test accuracy, the seconds since the last
        commit, the device; then they are done and their weights are dropped."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for trial in trials:
                self.db.execute(
                    "UPDATE trials SET status = 'complete', test_accuracy = ?, "
                    "seconds = COALESCE(seconds, 0) + ?, device = ?, owner = NULL, heartbeat = NULL, "
                    "updated = ? WHERE id = ? AND owner = ?",
                    (trial["test_accuracy"], trial["seconds"], trial["device"], _now(), trial["trial_id"], owner),
                )
                self.db.execute("DELETE FROM weights WHERE trial_id = ?", (trial["trial_id"],))

    @_guarded
    def merge(self, other: Path | str, job: str) -> int:
        """Add the complete trials of another store (a job's), with their loops, that this one
        lacks complete, recording `job` as where they were trained; one transaction. Running again
        adds nothing. Returns how many trials were added."""
        source = Store(other)
        try:
            rows = source.completed()
            histories = {
                row["id"]: source.db.execute(
                    "SELECT loop, score, lkg, bounty, improved, ablated FROM loops WHERE trial_id = ?", (row["id"],)
                ).fetchall()
                for row in rows
            }
        finally:
            source.close()
        added = 0
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for row in rows:
                present = self.db.execute(
                    f"SELECT id, status FROM trials WHERE {_KEY}", tuple(row[c] for c in KEY_COLUMNS)
                ).fetchone()
                if present and present[1] == "complete":
                    continue
                if present:  # a partial run of the same trial here: the job's complete one replaces it
                    self.db.execute("DELETE FROM trials WHERE id = ?", (present[0],))
                columns = [c for c in row if c not in ("id", "sweep_id", "owner", "heartbeat")]
                trial_id = self.db.execute(
                    f"INSERT INTO trials ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    [job if c == "job" else row[c] for c in columns],
                ).lastrowid
                self.db.executemany(
                    "INSERT INTO loops (trial_id, loop, score, lkg, bounty, improved, ablated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(trial_id, *loop) for loop in histories[row["id"]]],
                )
                added += 1
        return added

    @_guarded
    def completed(self, family: str | None = None) -> list[dict]:
        """Complete trials as dicts, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM trials WHERE status = 'complete' AND (? IS NULL OR family = ?) ORDER BY id", (family, family)
        )
        names = [d[0] for d in rows.description]
        return [dict(zip(names, values)) for values in rows.fetchall()]

    @_guarded
    def history(self, trial_id: int) -> list[LoopRecord]:
        rows = self.db.execute(
            "SELECT loop, score, lkg, bounty, improved, ablated FROM loops WHERE trial_id = ? ORDER BY loop",
            (trial_id,),
        )
        return [
            LoopRecord(loop, score, lkg, bounty, bool(improved), ablated)
            for loop, score, lkg, bounty, improved, ablated in rows
        ]

    @_guarded
    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall())
