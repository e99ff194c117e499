"""psa bench's machinery on small data (what it measures is reported, never asserted: timings
depend on the machine)."""

import math
import re

import pytest
from rich.console import Console

from helpers import subset
from psa import bench
from psa.trial.architecture import Architecture


@pytest.fixture(scope="module")
def small(mnist):
    return subset(mnist, train=1200, val=400)


def archs(*names):
    return [Architecture.parse(n) for n in names]


def test_groups_are_the_sweeps_stacks_and_packs():
    groups = bench.engine_groups(archs("1*8", "2*4", "4*4", "1*2048"), 40 << 30, pack=3)
    assert [[str(stack[0].arch) for stack in group] for group, _ in groups] == [["1*8", "2*4", "4*4"], ["1*2048"]]
    assert all(len(stack) == 60 for group, _ in groups for stack in group)
    assert [scale for _, scale in groups] == [1.0, 1.0]
    ((group, scale),) = bench.engine_groups(archs("1*2048"), 1 << 30, pack=3)  # split: the first stack timed
    assert len(group) == 1 and len(group[0]) < 60 and scale == 60 / len(group[0])


@pytest.mark.parametrize("whole_loops", [False, True])
def test_time_engine_measures_a_group(small, whole_loops):
    ((group, scale),) = bench.engine_groups(archs("1*4", "2*2"), 2 << 30, pack=2)
    timing = bench.time_engine(group, scale, small, 2, 200, whole_loops)
    assert set(timing) == {"loop", "setup"}
    assert all(math.isfinite(v) and v > 0 for v in timing.values())


def test_validation_runs_the_real_sweep_and_reports_its_error(small):
    console = Console(record=True, width=200)
    machine = bench.Machine(device="cpu", threads=1, pack=2)
    found = bench.validate(archs("1*4", "2*2"), small, machine, bench.Timing(steps=2, val_samples=200), console)
    assert found.trained == 120  # the real sweep trained the two architectures' 60 trials each
    assert found.estimated > 0 and found.measured > 0
    assert found.error == (found.estimated - found.measured) / found.measured
    printed = console.export_text()
    assert "validation: real sweep of 1*4, 2*2 (120 trials x 2 meta-loops)" in printed
    assert f"took {found.measured:.1f} s, estimated {found.estimated:.1f} s, error {100 * found.error:+.1f}%" in printed


def test_json_gives_the_cloud_plan_a_measured_cost_model(tmp_path, capsys):
    from psa.cli import main
    from psa.engine import costmodel

    main(
        [
            "bench",
            "--estimate-sweep",
            "--arch",
            "1*4,2*2",
            "--pack",
            "2",
            "--steps",
            "2",
            "--val-samples",
            "200",
            "--device",
            "cpu",
            "--json",
            str(tmp_path / "bench.json"),
        ]
    )
    measured = costmodel.read_measured(tmp_path / "bench.json")
    assert set(measured) == {"1*4", "2*2"} and all(v > 0 for v in measured.values())
    total = float(capsys.readouterr().out.split("engine: ")[1].split(" s")[0])
    # The packed group's time is shared out between its architectures: the parts add up.
    assert sum(measured.values()) * 100 == pytest.approx(total, rel=0.05)
    assert costmodel.arch_seconds(Architecture.parse("1*4"), 60, 100, 1.0, measured) == pytest.approx(
        100 * measured["1*4"]
    )


# `psa bench --estimate-sweep --device cpu --threads 2 --verbose`, 2026-12-05 (docs/PERFORMANCE.md,
# engine version 3, as fast as 4): seconds per meta-loop of 60 trials, the narrowest, deepest and
# widest stacks of the grid, fused and eager.
MEASURED_CPU = {
    "1*1": 0.289,
    "16*2": 0.343,
    "2*8": 0.633,
    "32*32": 6.878,
    "939*2": 1.436,
    "2048*1": 1.226,
    "632*4": 2.417,
    "4*632": 142.441,
    "1*2048": 141.383,
    "115*115": 263.637,
}


def test_the_cpu_cost_model_follows_the_cpu_bench():
    from psa.engine import costmodel
    from psa.engine.batched.stack import Layout

    for name, seconds in MEASURED_CPU.items():
        arch = Architecture.parse(name)
        fused = Layout.of(arch, "simplemlp").fused_width is not None
        assert 0.7 < costmodel.cpu_loop_seconds(arch, 60, 2, fused) / seconds < 1.25, name
    # Unfused, a deep narrow stack pays a dozen framework operations per layer: 939*2 took 58 s eagerly.
    assert costmodel.cpu_loop_seconds(Architecture.parse("939*2"), 60, 2, False) > 10 * MEASURED_CPU["939*2"]


def test_a_cpu_sweep_announces_about_what_it_takes(monkeypatch):
    """The main job (5 architectures x 18 trials x 10 meta-loops) trained in 15-27 s on 2 threads
    (README); the H100's model scaled down announced 83 s."""
    import torch

    from psa.sweeps.grid import estimate
    from psa.sweeps.settings import RunSettings

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    specs = RunSettings(tuple(archs("1*32", "2*16", "4*8", "8*4", "16*2")), trials=3, meta_loops=10).grid().specs
    assert 12 < estimate(specs, {}, 10, torch.device("cpu")) < 40
    half_done = {spec: ("running", 5) for spec in specs}
    assert estimate(specs, half_done, 10, torch.device("cpu")) == pytest.approx(
        estimate(specs, {}, 10, torch.device("cpu")) / 2
    )


def test_repeats_give_each_group_its_share_of_the_measured_peak(capsys):
    from psa.bench.peak import Repeated
    from psa.cli import main

    assert (Repeated((3.0, 1.0, 2.0)).median, Repeated((3.0, 1.0, 2.0)).spread) == (2.0, 1.0)
    arguments = ["bench", "--estimate-sweep", "--arch", "1*4", "--steps", "2", "--val-samples", "200"]
    main(arguments + ["--device", "cpu", "--threads", "1", "--repeats", "2", "--verbose"])
    out = capsys.readouterr().out
    assert "median of 2" in out
    share = float(out.split("GFLOP/s, ")[-1].split("% of peak")[0])
    assert 0 < share < 100


@pytest.mark.slow
def test_under_load_times_each_engine_quiet_and_beside_a_busy_program(capsys):
    """Two tiny sweeps per engine, quiet and beside a busy loop started at once: each round is
    reported, and the table holds both engines with the first as baseline."""
    from psa.cli import main

    flags = ["--arch", "2*2", "--trials", "1", "--meta-loops", "1", "--hogs", "1", "--delay", "0"]
    main(["bench", "--under-load", *flags, "--spins", "psa", "--engines", "fused,eager"])
    out = " ".join(capsys.readouterr().out.split())
    for engine in ("fused", "eager"):
        for case in ("quiet", "loaded"):
            assert re.search(rf"round 1: {engine}, GOMP_SPINCOUNT \d+, {case}: [\d.]+ s", out)
    baseline, other = re.findall(r"(fused|eager), GOMP_SPINCOUNT \d+ │ [\d.]+ │ [\d.]+ │ [\d.]+ │ ([\d.]+)", out)
    assert baseline == ("fused", "1.00") and other[0] == "eager"
