"""The sharded plan: the grid split into N SageMaker jobs of whole architectures, balanced by what
each architecture costs to train (psa.costmodel), each job running the sweep engine over its
share. A plan is named by a hash of what it trains and how many shards, and its split is kept in
S3 the first time it is launched, so launching it again finds the same shards."""

import hashlib
import json
from dataclasses import asdict, dataclass

from psa import PSAError
from psa.architecture import Architecture
from psa.cloud import layout
from psa.cloud.aws import Cloud
from psa.costmodel import arch_seconds


@dataclass(frozen=True)
class Plan:
    archs: tuple[str, ...]
    modes: tuple[str, ...]
    trials: int  # per architecture and mode
    arguments: tuple[tuple[str, str], ...]  # the rest of a job's arguments (Run.arguments)
    shards: tuple[tuple[str, ...], ...]  # the architectures of each job
    seconds: tuple[float, ...]  # estimated training seconds of each job

    @property
    def id(self) -> str:
        """What the plan trains and in how many jobs, hashed: the same for the same launch."""
        key = json.dumps([self.archs, self.modes, self.trials, self.arguments, len(self.shards)])
        return hashlib.sha256(key.encode()).hexdigest()[:8]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        data = json.loads(text)
        return cls(
            tuple(data["archs"]),
            tuple(data["modes"]),
            data["trials"],
            tuple(tuple(pair) for pair in data["arguments"]),
            tuple(tuple(s) for s in data["shards"]),
            tuple(data["seconds"]),
        )


def split(
    archs: list[Architecture],
    modes,
    trials: int,
    loops: int,
    shards: int,
    speed: float,
    arguments: dict[str, str],
    measured: dict | None = None,
) -> Plan:
    """N shards of whole architectures, balanced by estimated cost: the costliest architecture
    first, each to the shard with the least work so far (longest-processing-time first)."""
    if shards < 1:
        raise PSAError("--shards must be at least 1")
    unique = list(dict.fromkeys(archs))
    if shards > len(unique):
        raise PSAError(f"--shards {shards}: the grid has only {len(unique)} architectures to share out")
    cost = {arch: arch_seconds(arch, trials * len(modes), loops, speed, measured) for arch in unique}
    members: list[list[Architecture]] = [[] for _ in range(shards)]
    loads = [0.0] * shards
    for arch in sorted(unique, key=lambda a: (-cost[a], str(a))):
        k = min(range(shards), key=lambda i: (loads[i], i))
        members[k].append(arch)
        loads[k] += cost[arch]
    return Plan(
        tuple(str(a) for a in unique),
        tuple(modes),
        trials,
        tuple(sorted(arguments.items())),
        tuple(tuple(str(a) for a in sorted(m, key=unique.index)) for m in members),
        tuple(loads),
    )


def settle(cloud: Cloud, bucket: str, prefix: str, plan: Plan) -> Plan:
    """The plan as first launched: its split, kept in S3, wins over a new estimate, so a second
    launch finds the same shards (their jobs and checkpoints) whatever the cost model says now."""
    key = layout.plan_key(prefix, plan.id)
    if cloud.exists(bucket, key):
        return Plan.from_json(cloud.read(bucket, key).decode())
    cloud.write(bucket, key, plan.to_json().encode())
    return plan


def load(cloud: Cloud, bucket: str, prefix: str, plan_id: str) -> Plan:
    if not cloud.exists(bucket, layout.plan_key(prefix, plan_id)):
        raise PSAError(f"no plan {plan_id} under {layout.uri(bucket, layout.plans(prefix))} (launched with --shards?)")
    return Plan.from_json(cloud.read(bucket, layout.plan_key(prefix, plan_id)).decode())
