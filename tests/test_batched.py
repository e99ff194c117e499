import gc
import subprocess
import sys

import pytest
import torch

from helpers import subset
from psa.engine import batched
from psa.engine import reference as engine
from psa.engine.batched import grouping, ops
from psa.engine.batched.stack import Layout
from psa.progress import Reporter
from psa.trial.architecture import Architecture
from psa.trial.modes import MODES
from psa.trial.spec import Hyper, TrialSpec


@pytest.fixture(scope="module")
def data64(mnist):
    return subset(mnist, train=900, val=400, dtype=torch.float64)


@pytest.mark.parametrize("family, arch", [("simplemlp", "[2*8, 1*5]"), ("resmlp", "[1*8, 2*6]")])
def test_batched_engine_follows_the_single_trial_engine(data64, family, arch):
    """Every trial of a stack (six modes x two seeds, trained together) gives the same scores,
    LKG decisions, ablations, bounty and test accuracy as that trial run alone, in float64."""
    hyper = Hyper(lr=2e-3, batch_size=64, dropout=0.3)
    specs = [TrialSpec(Architecture.parse(arch), family, mode, t, 40 + t, hyper) for mode in MODES for t in range(2)]
    loops = 4
    results = batched.train_trials(specs, data64, loops, dtype=torch.float64)
    improvements = 0
    for spec, result in zip(specs, results):
        state = engine.new_state(spec, dtype=torch.float64)
        alone = engine.run_loops(spec, data64, state, loops)
        assert [(r.score, r.improved, r.ablated) for r in result.history] == [
            (r.score, r.improved, r.ablated) for r in alone
        ], spec.mode
        assert (result.bounty, result.bounty_loop) == (state.bounty, state.bounty_loop)
        # The same mean training loss, summed per batch as the engine sums it (only each batch's
        # log-sum-exp is written another way).
        assert [r.loss for r in result.history] == pytest.approx([r.loss for r in alone], rel=1e-12, abs=0)
        assert result.test_accuracy == engine.accuracy(state.lkg, data64.x_test, data64.y_test)
        improvements += sum(r.improved for r in alone[1:])
    assert improvements > 0  # the LKG decision was exercised both ways
    assert len({r.bounty for r in results}) > 4  # modes really differ


def test_chunked_stacks_give_the_same_results(data64):
    specs = [
        TrialSpec(Architecture.parse("[1*6]"), "simplemlp", mode, 0, 7, Hyper(lr=2e-3, batch_size=100))
        for mode in MODES
    ]
    whole = batched.train_trials(specs, data64, 2, dtype=torch.float64)
    per_trial = Layout.of(specs[0].arch, "simplemlp").memory_per_trial(100, 1000, 8)
    chunked = batched.train_trials(specs, data64, 2, dtype=torch.float64, memory_bytes=2 * per_trial)
    assert grouping.chunk_size(specs, 2 * per_trial, 8) == 2
    assert [r.history for r in whole] == [r.history for r in chunked]
    assert [r.spec for r in chunked] == specs


@pytest.mark.parametrize("m, k, n", [(5, 1, 3), (5, 3, 1), (1, 4, 3), (1, 1, 1), (4, 3, 2)])
def test_narrow_matmul_shortcuts_match_bmm(m, k, n):
    a, b = torch.randn(7, m, k, dtype=torch.float64), torch.randn(7, k, n, dtype=torch.float64)
    assert torch.allclose(ops.bmm(a, b), torch.bmm(a, b), rtol=1e-12, atol=1e-12)


def test_width_one_stacks_follow_the_single_trial_engine(data64):
    specs = [
        TrialSpec(Architecture.parse("[3*1, 1*2]"), "simplemlp", mode, 0, 3, Hyper(lr=5e-3, batch_size=128))
        for mode in MODES
    ]
    for spec, result in zip(specs, batched.train_trials(specs, data64, 3, dtype=torch.float64)):
        alone = engine.run_loops(spec, data64, engine.new_state(spec, dtype=torch.float64), 3)
        assert [(r.score, r.improved) for r in result.history] == [(r.score, r.improved) for r in alone]


@pytest.mark.parametrize(
    "arch, cells",
    [
        ("[1*6]", [("none", 0), ("none", 1), ("hidden", 0)]),  # uneven cells, as a resumed sweep leaves
        ("[1*80]", [(m, t) for m in ("dropout", "full") for t in range(2)]),  # first layer wider than a batch
    ],
)
def test_stacks_that_cannot_share_batches_follow_the_single_trial_engine(data64, arch, cells):
    hyper = Hyper(lr=2e-3, batch_size=64, dropout=0.3)
    specs = [TrialSpec(Architecture.parse(arch), "simplemlp", mode, t, 70 + t, hyper) for mode, t in cells]
    stack = batched.Stack.of(batched.order_specs(specs), "cpu", torch.float64)
    assert not stack.share_inputs
    for spec, result in zip(specs, batched.train_trials(specs, data64, 2, dtype=torch.float64)):
        alone = engine.run_loops(spec, data64, engine.new_state(spec, dtype=torch.float64), 2)
        assert [(r.score, r.improved) for r in result.history] == [(r.score, r.improved) for r in alone]


def test_paired_trials_share_their_batches():
    specs = [TrialSpec(Architecture.parse("[2*8]"), "simplemlp", mode, t, 90 + t) for mode in MODES for t in range(3)]
    stack = batched.Stack.of(batched.order_specs(specs), "cpu", torch.float32)
    assert stack.share_inputs and stack.seeds == [90, 91, 92]
    assert [s.mode for s in stack.specs[:3]] == ["dropout"] * 3 and stack.drop == slice(0, 3)


class StepCounter(Reporter):
    def __init__(self):
        super().__init__(live=False, every=float("inf"))
        self.steps = 0

    def step(self):
        self.steps += 1


def test_stacks_trained_side_by_side_give_each_stack_its_own_results(data64):
    """train_stacks with a group of stacks (as a GPU sweep packs small architectures) equals
    training each stack alone, records and all."""
    hyper = Hyper(lr=2e-3, batch_size=128, dropout=0.3)
    groups = [
        batched.order_specs(
            [
                TrialSpec(Architecture.parse(arch), "simplemlp", mode, t, 50 + t, hyper)
                for mode in MODES
                for t in range(2)
            ]
        )
        for arch in ("[1*6]", "[2*4]", "[3*2]")
    ]
    counted = StepCounter()
    together = batched.train_stacks(groups, data64, 2, counted)
    assert counted.steps == 2 * -(-len(data64.x_train) // 128)  # a step of the group steps every stack
    for specs, results in zip(groups, together):
        alone = batched.train_stacks([specs], data64, 2)[0]
        assert [r.spec for r in results] == specs
        assert [(r.history, r.bounty, r.test_accuracy) for r in results] == [
            (r.history, r.bounty, r.test_accuracy) for r in alone
        ]


def test_objects_older_than_training_are_left_out_of_collections_while_it_runs(data64):
    """train_stacks freezes the objects that exist when it starts (a full collection of them took
    ~100 ms inside a run's second loop), and puts them back when it ends or fails."""
    specs = [TrialSpec(Architecture.parse("1*4"), "simplemlp", mode, 0, 7, Hyper(batch_size=300)) for mode in MODES]
    frozen = []
    batched.train_stacks([specs], data64, 2, on_loop=lambda *_: frozen.append(gc.get_freeze_count()))
    assert len(frozen) == 2 and min(frozen) > 1000 and gc.get_freeze_count() == 0

    def fail(*_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        batched.train_stacks([specs], data64, 2, on_loop=fail)
    assert gc.get_freeze_count() == 0


def test_only_small_stacks_are_packed():
    def stacks(*archs):
        return [
            [TrialSpec(Architecture.parse(a), "simplemlp", mode, t, t) for mode in MODES for t in range(10)]
            for a in archs
        ]

    small, large = stacks("1*8"), stacks("1*2048")
    assert 60 * Layout.of(Architecture.parse("1*128"), "simplemlp").size <= grouping.PACK_PARAMS
    assert grouping.pack(small * 5, 1) == [[s] for s in small * 5]
    assert [len(g) for g in grouping.pack(small * 5, 2)] == [2, 2, 1]
    grouped = grouping.pack(small * 2 + large + small * 3, 8)
    assert [len(g) for g in grouped] == [2, 1, 3] and grouped[1] == large
    assert [len(g) for g in grouping.pack(stacks("2048*1", "939*2", "32*32", "44*44", "1*128"), 8)] == [5]


def test_the_study_weight_decay_rounds_away_in_float32():
    """AdamW multiplies by 1 - lr * wd = 1 - 1e-8, which is exactly 1 in float32: torch's AdamW
    then trains decay as none, and the stack skips the multiply; in float64 it decays."""
    specs = batched.order_specs([TrialSpec(Architecture.parse("[1*4]"), "simplemlp", mode, 0, 5) for mode in MODES])
    assert batched.Stack.of(specs, "cpu", torch.float32).decaying is None
    stack64 = batched.Stack.of(specs, "cpu", torch.float64)
    assert [specs[i].mode for i in range(len(specs))[stack64.decaying]] == ["decay"]
    stronger = [TrialSpec(s.arch, s.family, s.mode, 0, 5, Hyper(weight_decay=1e-2)) for s in specs]
    assert batched.Stack.of(stronger, "cpu", torch.float32).decaying is not None
    weights = [torch.randn(50, requires_grad=True) for _ in range(2)]
    weights[1].data.copy_(weights[0].data)
    optimizers = [torch.optim.AdamW([w], lr=1e-4, weight_decay=wd) for w, wd in zip(weights, (1e-4, 0.0))]
    for _ in range(20):
        grad = torch.randn(50)
        for w, optimizer in zip(weights, optimizers):
            w.grad = grad.clone()
            optimizer.step()
    assert torch.equal(weights[0], weights[1])


KEPT_MEMORY_PROBE = """
import os
import sys
import torch

if sys.argv[1] == "psa":
    from psa.engine.memory import tune_for_training

    tune_for_training()

def resident_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

before = resident_mib()
blocks = [torch.ones(1 << 20) for _ in range(32)]  # a step's activations: 32 x 4 MiB, touched
del blocks
print(resident_mib() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator policy")
def test_memory_a_step_frees_stays_mapped_for_the_next_step():
    """Where training starts, psa keeps freed blocks of a few MB mapped (mallopt), so the next step's
    activations cost no page faults; without it glibc maps each such block afresh and unmaps it
    when freed."""
    kept = {
        side: float(
            subprocess.run(
                [sys.executable, "-c", KEPT_MEMORY_PROBE, side], capture_output=True, text=True, check=True
            ).stdout
        )
        for side in ("psa", "torch")
    }
    assert kept["psa"] >= 100, kept  # 128 MiB freed, still mapped
    assert kept["torch"] < 50, kept  # glibc's default gives it back
