"""Merges: the complete trials of several results stores (the shards of a grid, say) joined
into one, through the same Store.merge as `psa cloud collect` and `psa slurm collect`. A conflict
is refused with nothing written, and merging again adds nothing (docs/DESIGN.md section 8)."""

from pathlib import Path

from psa.errors import PSAError
from psa.store import Store


def merge_into(into: Path | str, sources: dict[Path | str, str | None]) -> int:
    """Store.merge of `sources` into the store `into`, created if need be; a store created for a
    merge that is refused is removed again, so a refusal leaves no file behind. Trials added."""
    into = Path(into)
    if into.resolve() in {Path(path).resolve() for path in sources}:
        raise PSAError(f"--into {into} is one of the stores to merge")
    created = not into.exists()
    store = Store(into)
    try:
        return store.merge(sources)
    except PSAError:
        store.close()
        if created:
            for path in (into, into.with_name(into.name + "-wal"), into.with_name(into.name + "-shm")):
                path.unlink(missing_ok=True)
        raise
    finally:
        store.close()
