"""A sweep's journal: what a group of stacks has trained, committed into the results store after
meta-loops (at most `every` seconds apart, the last loop always), one transaction for the group,
so a killed sweep loses no more than the loops since the last commit."""

import time
from pathlib import Path

from psa.store import Finish, Store, Update
from psa.store.claims import LostClaim
from psa.trial.spec import Progress, TrialSpec


class Journal:
    """Commits a group's progress into the store, as on_loop of train_stacks: the loop records
    since the last commit and the LKG weights that changed, one transaction for the group."""

    def __init__(
        self,
        store: Store,
        sweep_id: int,
        owner: str,
        ids: dict[TrialSpec, int],
        meta_loops: int,
        every: float,
        snapshot: Path | None = None,
        log=None,
        curves=None,
    ):
        self.store, self.sweep_id, self.owner, self.ids = store, sweep_id, owner, ids
        self.meta_loops, self.every, self.snapshot, self.log = meta_loops, every, snapshot, log
        self.curves = curves  # a psa.engine.curves.Curves: TensorBoard gets what the store got
        self.records = {spec: [] for spec in ids}
        self.changed: set[TrialSpec] = set()
        self.last = time.perf_counter()
        self.trained = 0  # trial-loops run, committed or not: the work done
        self.stacks = None  # the group's stacks, as the last loop left them

    def __call__(self, stacks, loop: int, records) -> None:
        self.stacks = stacks
        for stack, stack_records in zip(stacks, records):
            self.trained += len(stack_records)
            for spec, record in zip(stack.specs, stack_records):
                self.records[spec].append(record)
                if record.improved:
                    self.changed.add(spec)
        if loop == self.meta_loops or time.perf_counter() - self.last >= self.every:
            self.commit(stacks)
        if self.log:
            self.log(stacks, loop, records)

    def _share(self) -> float:
        """Seconds since the last commit, per trial of the group."""
        now = time.perf_counter()
        share, self.last = (now - self.last) / len(self.ids), now
        return share

    def commit(self, stacks) -> None:
        updates, seconds = [], self._share()
        for stack in stacks:
            changed = [t for t, spec in enumerate(stack.specs) if spec in self.changed]
            weights = dict(zip(changed, stack.lkg[changed].cpu().numpy())) if changed else {}
            for t, spec in enumerate(stack.specs):
                progress = Progress(
                    self.records[spec][-1].loop,
                    weights.get(t),
                    stack.lkg_score[t],
                    stack.bounty[t],
                    stack.bounty_loop[t],
                )
                updates.append(Update(self.ids[spec], self.records[spec], progress, seconds))
        if not self.store.commit(self.sweep_id, self.owner, updates):
            raise LostClaim
        if self.curves:
            self.curves.write(self.records)
        self.records = {spec: [] for spec in self.ids}
        self.changed.clear()
        if self.snapshot:
            self.store.snapshot(self.snapshot)

    def flush(self) -> None:
        """Commit the loops not yet committed: a sweep asked to stop between two training steps,
        where the stacks' LKG, scores and bounties are those of the last loop the journal saw."""
        if self.stacks is not None and any(self.records.values()):
            self.commit(self.stacks)

    def complete(self, results) -> None:
        seconds = self._share()
        self.store.complete(self.owner, [Finish(self.ids[r.spec], r.test_accuracy, seconds, r.device) for r in results])
        if self.curves:
            self.curves.close(r.spec for r in results)
        if self.snapshot:
            self.store.snapshot(self.snapshot)
