"""The store's file: its tables, the upgrade of an older schema, the key that identifies a trial,
how a file is opened to write into or read from, and the one way a failing file is reported."""

import errno
import functools
import sqlite3
import time
import urllib.parse
from pathlib import Path

from psa.errors import PSAError
from psa.trial.spec import KEY, TrialSpec, trial_key

VERSION = 4
TABLES = ("sweeps", "trials", "loops", "weights")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    command TEXT NOT NULL,
    settings TEXT NOT NULL,
    manifest TEXT, ended TEXT
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
    4: [
        # The run's manifest (psa.sweeps.manifest: versions, machine, command, settings) and when it ended.
        "ALTER TABLE sweeps ADD COLUMN manifest TEXT",
        "ALTER TABLE sweeps ADD COLUMN ended TEXT",
    ],
}

WHERE_KEY = " AND ".join(f"{column} = ?" for column in KEY)  # a trial's row (psa.trial.spec.KEY)


def key(spec: TrialSpec, meta_loops: int) -> tuple:
    """The values of WHERE_KEY's parameters."""
    return tuple(trial_key(spec, meta_loops).values())


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def disk_full(error: BaseException) -> bool:
    return (isinstance(error, sqlite3.OperationalError) and "full" in str(error)) or (
        isinstance(error, OSError) and error.errno == errno.ENOSPC
    )


def problem(path: Path, error: BaseException) -> PSAError:
    """The one way a failing store file is told: a full disk damages nothing (every commit is whole,
    and the same command goes on from the last), anything else is damage."""
    if disk_full(error):
        return PSAError(
            f"no space left on the disk of results store {path} ({error}): free some space and run the same "
            f"command again; the store keeps everything committed so far"
        )
    return PSAError(
        f"results store {path} is damaged or unreadable ({error}); move it aside and run again to start a new store"
    )


def guarded(method):
    """A failing store file is a PSAError that names it, whatever the query met."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.IntegrityError:
            raise
        except (sqlite3.DatabaseError, OSError) as error:
            if isinstance(error, OSError) and not disk_full(error):
                raise
            raise problem(self.path, error) from None

    return run


def tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def refuse_foreign(path: Path, found: set[str], reading: bool) -> None:
    """A database with tables psa did not make is never psa's to write in, and one without psa's
    trials is no results store to read."""
    foreign = sorted(name for name in found - set(TABLES) if not name.startswith("sqlite_"))
    if foreign:
        raise PSAError(
            f"{path} is not a psa results store (it holds the tables {', '.join(foreign)}); psa leaves it as it is"
        )
    if reading and "trials" not in found:
        raise PSAError(f"{path} is not a psa results store (it holds no trials table)")


def connect(path: Path, check: bool) -> sqlite3.Connection:
    """A connection to write into the store at `path` (created if need be), its schema brought up to
    VERSION in one transaction. A database psa did not make is refused before anything is written."""
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        refuse_foreign(path, tables(db), reading=False)
        db.execute("PRAGMA journal_mode=WAL")
        return prepare(db, path, check)
    except BaseException:
        db.close()
        raise


def read_copy(path: Path) -> sqlite3.Connection:
    """The store at `path` copied into memory, its schema brought up to date there. The file is only
    read: never written, nothing left beside it, whether or not a sweep is writing it meanwhile."""
    if not path.is_file():
        raise PSAError(f"results store {path} not found" if not path.exists() else f"results store {path} is a folder")
    # A store that no sweep is writing has no -wal beside it, and is read as immutable: SQLite then
    # creates no -wal and -shm of its own beside it (which a read-only connection could not remove).
    live = path.with_name(path.name + "-wal").exists()
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro{'' if live else '&immutable=1'}"
    copy = sqlite3.connect(":memory:", isolation_level=None)
    try:
        source = sqlite3.connect(uri, uri=True, timeout=60)
        try:
            refuse_foreign(path, tables(source), reading=True)
            source.backup(copy)
        finally:
            source.close()
        return prepare(copy, path, check=True)
    except sqlite3.DatabaseError as error:
        copy.close()
        raise problem(path, error) from None
    except BaseException:
        copy.close()
        raise


def prepare(db: sqlite3.Connection, path: Path, check: bool) -> sqlite3.Connection:
    """The schema of an open store brought up to VERSION, in one transaction."""
    db.execute("PRAGMA foreign_keys=ON")
    if check and db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        raise sqlite3.DatabaseError("integrity check failed")
    with db:
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > VERSION:
            raise PSAError(f"results store {path} has schema {version}, newer than this psa's {VERSION}: upgrade psa")
        if "trials" in tables(db):
            # A schema-1 store says user_version 0.
            for target in range(max(version, 1) + 1, VERSION + 1):
                for statement in UPGRADES[target]:
                    db.execute(statement)
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {VERSION}")
    return db
