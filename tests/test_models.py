import pytest
import torch

from psa.engine.reference import new_state
from psa.errors import PSAError
from psa.trial import ablation
from psa.trial.architecture import Architecture
from psa.trial.models import KeyedDropout, build_model
from psa.trial.modes import MODES
from psa.trial.spec import Hyper, TrialSpec
from psa.trial.topology import parameter_count, topology


@pytest.mark.parametrize(
    "text, widths",
    [("[4*4, 2*8]", (4, 4, 4, 4, 8, 8)), ("1*2048", (2048,)), ("1x2048", (2048,)), (" [ 3 * 5 ] ", (5, 5, 5))],
)
def test_architecture_strings(text, widths):
    assert Architecture.parse(text).widths == widths


@pytest.mark.parametrize("text", ["", "[]", "4*", "*4", "[4*4,, 2*8]", "4*0", "0*4", "4+4", "[4*4", "abc"])
def test_malformed_architecture_is_a_clear_error(text):
    with pytest.raises(PSAError, match="malformed architecture"):
        Architecture.parse(text)


@pytest.mark.parametrize(
    "arch, count",
    [("1*2048", 1_628_170), ("2*939", 1_629_175), ("939*2", 785 * 2 + 938 * 3 * 2 + 3 * 10), ("1*16", 12_730)],
)
def test_parameter_counts(arch, count):
    parsed = Architecture.parse(arch)
    assert parameter_count(parsed, "simplemlp") == count
    model = build_model(parsed, "simplemlp", seed=0)
    assert sum(p.numel() for p in model.parameters()) == count


@pytest.mark.parametrize("arch", ["[2*8, 1*4]", "[1*784, 2*3]"])
def test_resmlp_parameter_count_matches_model(arch):
    parsed = Architecture.parse(arch)
    model = build_model(parsed, "resmlp", seed=0)
    assert sum(p.numel() for p in model.parameters()) == parameter_count(parsed, "resmlp")


def test_initialisation_is_the_nn_linear_range_and_seeded():
    arch = Architecture.parse("[2*64]")
    a, b = build_model(arch, "simplemlp", seed=3), build_model(arch, "simplemlp", seed=3)
    for la, lb in zip(a.linears, b.linears):
        assert torch.equal(la.weight, lb.weight)
        bound = 1 / la.in_features**0.5
        assert la.weight.abs().max() <= bound and la.weight.abs().max() > 0.9 * bound
    assert not torch.equal(a.linears[0].weight, build_model(arch, "simplemlp", seed=4).linears[0].weight)


def snapshot(model):
    return [(lin.weight.detach().clone(), lin.bias.detach().clone()) for lin in model.linears]


@pytest.mark.parametrize("family, arch", [("simplemlp", "[2*8, 1*5]"), ("resmlp", "[1*8, 2*6]")])
@pytest.mark.parametrize("mode", ["output", "full", "hidden"])
def test_each_ablation_zeroes_exactly_the_promised_weights(family, arch, mode):
    parsed = Architecture.parse(arch)
    top = topology(parsed, family)
    hits = set()
    for loop in range(2, 60):
        model = build_model(parsed, family, seed=11)
        before = snapshot(model)
        choice = ablation.choose(mode, top, seed=11, loop=loop)
        layer, unit = choice
        hits.add(layer)
        ablation.apply(model.linears, mode, choice)
        for li, ((w0, b0), lin) in enumerate(zip(before, model.linears)):
            expected_w, expected_b = w0.clone(), b0.clone()
            if li == layer:
                expected_w[unit] = 0
                expected_b[unit] = 0
            if mode == "hidden" and li == layer + 1:
                expected_w[:, unit] = 0
            assert torch.equal(lin.weight, expected_w) and torch.equal(lin.bias, expected_b)
    n = len(top.shapes)
    if mode == "output":
        assert hits == {n - 1}
    elif mode == "hidden":
        assert hits == set(top.hidden) and n - 1 not in hits
        if family == "resmlp":
            assert 0 not in hits
    else:
        assert hits == set(range(n))


def test_hidden_ablation_hits_wider_layers_more_often():
    top = topology(Architecture.parse("[1*30, 1*3]"), "simplemlp")
    layers = [ablation.choose("hidden", top, 5, loop)[0] for loop in range(2, 400)]
    assert layers.count(0) > 5 * layers.count(1) > 0


def test_baseline_modes_never_ablate():
    top = topology(Architecture.parse("[2*8]"), "simplemlp")
    assert all(ablation.choose(mode, top, 1, 5) is None for mode in ("none", "decay", "dropout"))


@pytest.mark.parametrize("family", ["simplemlp", "resmlp"])
def test_dropout_is_active_only_in_dropout_mode_and_only_while_training(family):
    arch = Architecture.parse("[2*32]")
    x = torch.randn(64, 784)
    for mode in MODES:
        model = new_state(TrialSpec(arch, family, mode, 0, 9, Hyper(dropout=0.5))).lkg
        ps = {m.p for m in model.modules() if isinstance(m, KeyedDropout)}
        assert ps == ({0.5} if mode == "dropout" else {0.0})
        model.set_dropout_key(1234)
        model.eval()
        evaluated = model(x)
        model.train()
        assert torch.equal(model(x), evaluated) != (mode == "dropout")
