"""How sweeps share a store: a sweep claims the trials it trains (an owner and a heartbeat on
each) and renews its claims while it runs. A claim whose owner is gone (on this host: its process
has ended; anywhere: no heartbeat for LEASE seconds) is taken over, so several sweeps on one store
finish a grid once between them, and a killed sweep's trials are not left stranded."""

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from psa.store.schema import WHERE_KEY, guarded, key, now
from psa.trial.spec import TrialSpec, trial_key

LEASE = 60.0  # seconds without a heartbeat after which another sweep may take a claim over
HEARTBEAT = 10.0  # seconds between two renewals of a sweep's claims


class LostClaim(Exception):
    """Another sweep took over the trials this one was training (its claim had lapsed)."""


def owner_id() -> str:
    """Who claims: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def alive(owner: str | None, heartbeat: float | None) -> bool:
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


@guarded
def claim(store, sweep_id: int, specs: list[TrialSpec], meta_loops: int, run: dict, owner: str):
    """Claim every trial of `specs` for `owner`, all or none: None if one is complete or another
    live sweep holds it. `run`: the columns a claim records of the sweep (seeding, base_seed,
    device, threads, engine). Returns each spec's trial id."""
    ids, stamp = {}, time.time()
    with store.db:
        store.db.execute("BEGIN IMMEDIATE")
        for spec in specs:
            row = store.db.execute(
                f"SELECT id, status, owner, heartbeat, loops_done FROM trials WHERE {WHERE_KEY}", key(spec, meta_loops)
            ).fetchone()
            if row and (row[1] == "complete" or (row[2] != owner and alive(row[2], row[3]))):
                store.db.execute("ROLLBACK")
                return None
            columns = {"sweep_id": sweep_id, **run, "owner": owner, "heartbeat": stamp, "updated": now()}
            if row:
                # Seeds belong to the trial's first sweep, and so do threads and engine once a loop
                # is committed (a resume goes on with them); the rest to this sweep.
                kept = ("seeding", "base_seed") + (("threads", "engine") if row[4] else ())
                changed = {c: v for c, v in columns.items() if c not in kept}
                assignments = ", ".join(f"{c} = ?" for c in changed)
                store.db.execute(f"UPDATE trials SET {assignments} WHERE id = ?", (*changed.values(), row[0]))
                ids[spec] = row[0]
            else:
                columns |= trial_key(spec, meta_loops) | {"status": "running"}
                names, values = tuple(columns), tuple(columns.values())
                ids[spec] = store.db.execute(
                    f"INSERT INTO trials ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", values
                ).lastrowid
    return ids


@guarded
def renew(store, owner: str) -> None:
    with store.db:
        store.db.execute("UPDATE trials SET heartbeat = ? WHERE owner = ? AND status = 'running'", (time.time(), owner))


@guarded
def release(store, owner: str | None = None) -> None:
    """Give up `owner`'s claims at once (a sweep that stops), so others need not wait a lease;
    without an owner, every claim (a store restored from a copy, whose sweeps are gone)."""
    with store.db:
        store.db.execute(
            "UPDATE trials SET owner = NULL, heartbeat = NULL WHERE (? IS NULL OR owner = ?) AND status = 'running'",
            (owner, owner),
        )


@contextmanager
def holding(store, owner: str):
    """While the block runs, a thread of its own (with its own connection) renews `owner`'s
    claims; after it, they are released, and the thread has closed its connection: no connection
    outlives the sweep, so the store's close folds its whole log into the file."""
    from psa.store import Store

    stop = threading.Event()

    def beat():
        beating = Store(store.path, check=False)
        try:
            while not stop.wait(HEARTBEAT):
                renew(beating, owner)
        finally:
            beating.close()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        release(store, owner)


def restore(snapshot: Path, live: Path):
    """The store at `live`, going on from `snapshot` (a copy a killed run kept, Store.snapshot) if
    `live` does not exist yet; the claims of the killed run's sweeps are released then, since this
    run is the store's only writer now. Returns (the store, whether it resumed from the copy)."""
    from psa.store import Store

    resumed = snapshot.is_file() and not live.is_file()
    if resumed:
        live.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(snapshot, live)
    store = Store(live)
    if resumed:
        release(store)
    return store, resumed
