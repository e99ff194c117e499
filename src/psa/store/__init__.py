"""The results store: one SQLite file (standard library, WAL mode) holding sweeps, trials, every
meta-loop of every trial, and the LKG weights of the trials in flight (docs/DESIGN.md section 8).
Its tables and their upgrades are in psa.store.schema; how sweeps share it, in psa.store.claims.

Durability: a sweep commits a stack's progress after a meta-loop (or a few, bounded by time) in
one transaction: the new loop records, each trial's Progress, and the LKG weights that changed. A
killed sweep (kill -9 included) loses at most the loops since that commit, and the next run
resumes each trial there, with the same results as an unbroken run. A trial's weights are dropped
when it completes."""

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from psa.errors import PSAError
from psa.files import write_atomic
from psa.store.schema import WHERE_KEY, connect, guarded, key, now, read_copy
from psa.trial.spec import KEY, LoopRecord, Progress, TrialSpec

DEFAULT_STORE = "results/psa.sqlite"
# What every run's manifest says, whatever psa recorded it (docs/API.md).
RUN_KEYS = ("id", "psa_version", "git_commit", "git_dirty", "python", "torch", "numpy", "cuda", "platform")
RUN_KEYS += ("cpu", "gpu", "host", "command", "settings", "threads", "device", "started", "ended")
# What two stores must agree on of a trial that both hold complete.
AGREED = ("seeding", "base_seed", "loops_done", "bounty", "bounty_loop", "test_accuracy")


@dataclass
class Update:
    """A claimed trial's meta-loops since its last commit, and where they leave it."""

    trial_id: int
    records: list[LoopRecord]
    progress: Progress  # its lkg only where the LKG changed since the last commit, else None
    seconds: float  # spent on them


@dataclass
class Finish:
    """A trial whose last loop is committed."""

    trial_id: int
    test_accuracy: float
    seconds: float  # since its last commit
    device: str


class Store:
    @guarded
    def __init__(self, path: Path | str, check: bool = True, db: sqlite3.Connection | None = None):
        """The store at `path`, created if need be, to write into (or `db`, a copy of it: Store.read)."""
        self.path = Path(path)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = connect(self.path, check)
        self.db = db

    @classmethod
    def read(cls, path: Path | str) -> "Store":
        """The store at `path` to read: a copy in memory, the file never written (nor anything left
        beside it), read whole even while a sweep writes it; a database psa did not make, or none,
        is a PSAError and stays as it was."""
        return cls(path, db=read_copy(Path(path)))

    def close(self) -> None:
        """Close the store, its write-ahead log first folded into the file itself: the file alone
        (what a copy, an upload or a backup takes) then holds every commit."""
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError:
            pass  # another connection busy with it, or a copy in memory: nothing to fold
        self.db.close()

    @guarded
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

    @guarded
    def start_sweep(self, command: str, settings: dict, manifest: dict | None = None) -> int:
        """A sweep begins: what it runs with, and its manifest (psa.sweeps.manifest)."""
        cursor = self.db.execute(
            "INSERT INTO sweeps (started, command, settings, manifest) VALUES (?, ?, ?, ?)",
            (now(), command, json.dumps(settings), manifest and json.dumps(manifest)),
        )
        return cursor.lastrowid

    @guarded
    def end_sweep(self, sweep_id: int) -> None:
        with self.db:
            self.db.execute("UPDATE sweeps SET ended = ? WHERE id = ?", (now(), sweep_id))

    @guarded
    def runs(self) -> list[dict]:
        """Every recorded sweep's manifest, oldest first; a sweep of a psa from before manifests
        gives what it recorded (command, settings, start) and None for the rest."""
        found = []
        for started, command, settings, manifest, ended in self.db.execute(
            "SELECT started, command, settings, manifest, ended FROM sweeps ORDER BY id"
        ):
            recorded = json.loads(manifest) if manifest else {}
            found.append(
                {name: None for name in RUN_KEYS}
                | {"command": command, "started": started, "settings": json.loads(settings)}
                | recorded
                | {"ended": ended}
            )
        return found

    @guarded
    def status(self, specs: list[TrialSpec], meta_loops: int) -> dict[TrialSpec, tuple[str, int]]:
        """(status, loops done) of each spec the store knows."""
        out = {}
        for spec in specs:
            row = self.db.execute(
                f"SELECT status, loops_done FROM trials WHERE {WHERE_KEY}", key(spec, meta_loops)
            ).fetchone()
            if row:
                out[spec] = row
        return out

    @guarded
    def trained_with(self, trial_id: int) -> tuple[int | None, int | None]:
        """(threads, engine version) of the sweep that last trained the trial; None where unknown."""
        return self.db.execute("SELECT threads, engine FROM trials WHERE id = ?", (trial_id,)).fetchone()

    @guarded
    def progress(self, trial_id: int) -> Progress:
        loops_done, lkg_score, bounty, bounty_loop = self.db.execute(
            "SELECT loops_done, lkg_score, bounty, bounty_loop FROM trials WHERE id = ?", (trial_id,)
        ).fetchone()
        if not loops_done:
            return Progress()
        saved = self.db.execute("SELECT dtype, lkg FROM weights WHERE trial_id = ?", (trial_id,)).fetchone()
        if saved is None:
            raise sqlite3.DatabaseError(f"trial {trial_id} has {loops_done} loops but no saved weights")
        lkg = np.frombuffer(saved[1], dtype=saved[0]).copy()
        return Progress(loops_done, lkg, lkg_score, bounty, bounty_loop or 0)

    @guarded
    def commit(self, sweep_id: int, owner: str, updates: list[Update]) -> bool:
        """One transaction for a group's progress. False, with nothing written, if another sweep
        has taken the claim over."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for update in updates:
                p = update.progress
                updated = self.db.execute(
                    "UPDATE trials SET loops_done = ?, lkg_score = ?, bounty = ?, bounty_loop = ?, "
                    "seconds = COALESCE(seconds, 0) + ?, heartbeat = ?, updated = ? "
                    "WHERE id = ? AND owner = ? AND status = 'running'",
                    (
                        update.records[-1].loop,
                        p.lkg_score,
                        p.bounty,
                        p.bounty_loop,
                        update.seconds,
                        time.time(),
                        now(),
                        update.trial_id,
                        owner,
                    ),
                ).rowcount
                if not updated:
                    self.db.execute("ROLLBACK")
                    return False
                self.db.executemany(
                    "INSERT INTO loops (trial_id, loop, score, lkg, bounty, improved, ablated, loss, sweep_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (update.trial_id, r.loop, r.score, r.lkg_score, r.bounty, int(r.improved), r.ablated)
                        + (r.loss, sweep_id)
                        for r in update.records
                    ],
                )
                if p.lkg is not None:
                    self.db.execute(
                        "INSERT OR REPLACE INTO weights (trial_id, dtype, lkg) VALUES (?, ?, ?)",
                        (update.trial_id, p.lkg.dtype.name, p.lkg.tobytes()),
                    )
        return True

    @guarded
    def complete(self, owner: str, finishes: list[Finish]) -> None:
        """The trials are done: their test accuracy and device are recorded, their weights dropped."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for f in finishes:
                self.db.execute(
                    "UPDATE trials SET status = 'complete', test_accuracy = ?, "
                    "seconds = COALESCE(seconds, 0) + ?, device = ?, owner = NULL, heartbeat = NULL, "
                    "updated = ? WHERE id = ? AND owner = ?",
                    (f.test_accuracy, f.seconds, f.device, now(), f.trial_id, owner),
                )
                self.db.execute("DELETE FROM weights WHERE trial_id = ?", (f.trial_id,))

    @guarded
    def merge(self, sources: dict[Path | str, str | None]) -> int:
        """Add the complete trials of other stores (each with the job it ran as, or None), with
        their loops, that this one lacks complete, in one transaction; a trial already complete
        here is left alone, so merging again adds nothing. A trial complete in two with other
        results or seeds, or trials of another engine version than the rest, is a PSAError and
        nothing is written. The sources are read from copies, never written. Returns how many
        trials were added."""
        added = 0
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            done = self.db.execute("SELECT COALESCE(engine, 1) FROM trials WHERE status = 'complete'")
            engines = {engine for (engine,) in done}
            for path, job in sources.items():
                rows, histories, runs = read_complete(path)
                self._keep_runs(runs)
                engines |= {row["engine"] or 1 for row in rows}
                if len(engines) > 1:
                    raise PSAError(f"{path}: its trials and the others' come from engine versions {sorted(engines)}")
                for row in rows:
                    found = self.db.execute(f"SELECT * FROM trials WHERE {WHERE_KEY}", [row[c] for c in KEY])
                    present = found.fetchone()
                    present = present and dict(zip([d[0] for d in found.description], present))
                    if present and present["status"] == "complete":
                        differ = [c for c in AGREED if present[c] != row[c]]
                        if differ:
                            raise PSAError(
                                f"{path}: trial {row['trial']} of {row['arch']} x {row['mode']} (seed {row['seed']}) "
                                f"is complete in two stores with other {', '.join(differ)}"
                            )
                        continue
                    if present:  # a partial run of the same trial here: the complete one replaces it
                        self.db.execute("DELETE FROM trials WHERE id = ?", (present["id"],))
                    columns = [c for c in row if c not in ("id", "sweep_id", "owner", "heartbeat")]
                    trial_id = self.db.execute(
                        f"INSERT INTO trials ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                        [job if c == "job" and job else row[c] for c in columns],
                    ).lastrowid
                    self.db.executemany(
                        "INSERT INTO loops (trial_id, loop, score, lkg, bounty, improved, ablated, loss) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [(trial_id, *loop) for loop in histories[row["id"]]],
                    )
                    added += 1
        return added

    def _keep_runs(self, runs: list[dict]) -> None:
        """Another store's sweeps, recorded here once each (by the id of its manifest), inside the
        merge's transaction: a merged store keeps every source's manifest."""
        known = {identity(run) for run in self.runs()}
        for run in runs:
            if identity(run) not in known:
                self.db.execute(
                    "INSERT INTO sweeps (started, command, settings, manifest, ended) VALUES (?, ?, ?, ?, ?)",
                    (run["started"], run["command"] or "", json.dumps(run["settings"]), json.dumps(run), run["ended"]),
                )
                known.add(identity(run))

    @guarded
    def completed(self, family: str | None = None) -> list[dict]:
        """Complete trials as dicts of their columns, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM trials WHERE status = 'complete' AND (? IS NULL OR family = ?) ORDER BY id", (family, family)
        )
        names = [d[0] for d in rows.description]
        return [dict(zip(names, values)) for values in rows.fetchall()]

    @guarded
    def history(self, trial_id: int) -> list[LoopRecord]:
        rows = self.db.execute(
            "SELECT loop, score, lkg, bounty, improved, ablated, loss FROM loops WHERE trial_id = ? ORDER BY loop",
            (trial_id,),
        )
        return [
            LoopRecord(loop, score, lkg, bounty, bool(improved), ablated, loss)
            for loop, score, lkg, bounty, improved, ablated, loss in rows
        ]

    @guarded
    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall())


def identity(run: dict) -> tuple:
    """What tells two recorded runs apart: a manifest's id, else (for a psa from before manifests)
    when it started and its command."""
    return (run["id"],) if run.get("id") else (run["started"], run["command"])


def read_complete(path: Path | str) -> tuple[list[dict], dict[int, list[tuple]], list[dict]]:
    """The complete trials of the store at `path` (Store.completed), the loops of each and its runs'
    manifests, read from a copy of it (Store.read): the store is only read, never written, so
    another process may replace it meanwhile (a snapshot in a shared folder)."""
    store = Store.read(path)
    try:
        rows = store.completed()
        loops = "SELECT loop, score, lkg, bounty, improved, ablated, loss FROM loops WHERE trial_id = ?"
        return rows, {row["id"]: store.db.execute(loops, (row["id"],)).fetchall() for row in rows}, store.runs()
    finally:
        store.close()
