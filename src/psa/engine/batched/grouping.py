"""Which trials train together: the trials of one architecture ordered into stacks that fit the
memory budget, and small stacks packed into groups that train side by side."""

from psa.engine.batched.stack import Layout
from psa.errors import PSAError
from psa.trial.modes import MODES
from psa.trial.spec import TrialSpec

# A stack of at most this many parameters (all its trials) leaves most of a GPU idle at every step
# of its own: 60 trials of 1*128 or of 44*44 (and every narrower or deep-and-narrow one) qualify.
PACK_PARAMS = 8_000_000
EVAL_CHUNK = 1000  # validation samples per forward pass


def order_specs(specs: list[TrialSpec]) -> list[TrialSpec]:
    """Mode-major and seed-minor with the dropout trials first: a stack's dropout (and decay)
    trials are then contiguous, and when every mode has the same seeds (paired trials), trial i
    has the (i mod G)-th of the G seeds, so trials sharing a seed can share their input batch."""
    return sorted(specs, key=lambda s: (s.mode != "dropout", MODES.index(s.mode), s.seed, s.trial))


def check_fits(
    specs: list[TrialSpec], memory_bytes: int, limit: str = "a stack may use (--max-memory)", itemsize: int = 4
) -> None:
    """Refuse, before anything is allocated or written, an architecture of which not even one
    trial fits the memory a stack may use."""
    for spec in {(s.arch, s.family, s.hyper.batch_size): s for s in specs}.values():
        need = Layout.of(spec.arch, spec.family).memory_per_trial(spec.hyper.batch_size, EVAL_CHUNK, itemsize)
        if need > memory_bytes:
            raise PSAError(
                f"architecture {spec.arch}: one trial needs {need / 2**30:.1f} GiB, more than the "
                f"{memory_bytes / 2**30:.1f} GiB {limit}"
            )


def chunk_size(specs: list[TrialSpec], memory_bytes: int, itemsize: int = 4) -> int:
    """How many trials of this architecture fit one stack within `memory_bytes`."""
    layout = Layout.of(specs[0].arch, specs[0].family)
    per_trial = layout.memory_per_trial(specs[0].hyper.batch_size, EVAL_CHUNK, itemsize)
    return max(1, min(len(specs), memory_bytes // per_trial))


def stacks_of(specs: list[TrialSpec], memory_bytes: int, itemsize: int = 4) -> list[list[TrialSpec]]:
    """The trials of one architecture, ordered (order_specs) and chunked to fit `memory_bytes`."""
    ordered = order_specs(specs)
    size = chunk_size(ordered, memory_bytes, itemsize)
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


def pack(stacks: list[list[TrialSpec]], limit: int) -> list[list[list[TrialSpec]]]:
    """Group consecutive small stacks, at most `limit` per group, to train side by side; a large
    stack trains alone."""
    groups, current = [], []
    for specs in stacks:
        if limit > 1 and len(specs) * Layout.of(specs[0].arch, specs[0].family).size <= PACK_PARAMS:
            current.append(specs)
            if len(current) < limit:
                continue
            groups.append(current)
        else:
            if current:
                groups.append(current)
            groups.append([specs])
        current = []
    return groups + ([current] if current else [])
