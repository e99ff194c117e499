# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       format_name: percent
# ---

# %% [markdown]
# # A study of one's own, against the published one
#
# Run a small PSA study, open it as DataFrames, plot its mean bounty per mode beside the published
# study's, and compare the two with their sampling noise. Run it as a script (`python
# examples/own_study.py`) or open it as a notebook (jupytext). The grid is small by default; the
# environment variables below make it smaller (CI) or larger.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; a notebook shows the figure inline anyway
import matplotlib.pyplot as plt  # noqa: E402

import psa  # noqa: E402
from psa.study.compare import compare_trials  # noqa: E402
from psa.sweeps.settings import Machine, RunSettings  # noqa: E402
from psa.sweeps.sweep import run_grid  # noqa: E402
from psa.trial.architecture import parse_list  # noqa: E402

OUT = Path(os.environ.get("EXAMPLE_OUT", "results/example"))
ARCHS = os.environ.get("EXAMPLE_ARCHS", "1*32,4*8,16*2")
MODES = ("none", "full", "hidden")
TRIALS = int(os.environ.get("EXAMPLE_TRIALS", "4"))
LOOPS = int(os.environ.get("EXAMPLE_LOOPS", "10"))

# %% [markdown]
# ## Train the study
# The same run path as `psa sweep`: run it again and it goes on from its store.

# %%
store = OUT / "own.sqlite"
run = RunSettings(tuple(parse_list(ARCHS)), MODES, TRIALS, LOOPS)
run_grid(run, store, Machine(threads=int(os.environ.get("PSA_THREADS", "1"))), command="examples/own_study.py")

# %% [markdown]
# ## Open it, and the published study, as DataFrames

# %%
mine = psa.open_study(store)
published = psa.open_study("published")
print(mine.trials[["arch", "mode", "trial", "bounty", "test_accuracy"]].head())
print(mine.manifest[-1]["command"], mine.manifest[-1]["torch"])

# %% [markdown]
# ## Mean bounty per mode, ours beside the published study's

# %%
ours = mine.summary()
theirs = published.summary()
theirs = theirs[theirs["arch"].isin(ours["arch"]) & theirs["mode"].isin(MODES)]
fig, axes = plt.subplots(1, len(set(ours["arch"])), figsize=(4 * len(set(ours["arch"])), 3.5), squeeze=False)
for ax, arch in zip(axes[0], mine.archs()):
    for offset, (name, summary) in enumerate((("ours", ours), ("published", theirs))):
        cell = summary[summary["arch"] == arch].set_index("mode").reindex(list(MODES))
        positions = [k + 0.4 * offset for k in range(len(MODES))]
        ax.bar(positions, cell["mean"], width=0.4, yerr=cell["std"], label=name, alpha=0.8)
    ax.set_xticks([k + 0.2 for k in range(len(MODES))], MODES)
    ax.set_title(f"Architecture {arch}")
    ax.set_ylabel("Mean bounty (%)")
axes[0][0].legend()
fig.tight_layout()
fig.savefig(OUT / "mean_bounty_per_mode.png", dpi=120)

# %% [markdown]
# ## The two studies compared, with their noise
# A regime disagreement counts only where both labels hold under resampling of each side's own
# trials; this study ran three of the six modes, so the regime rules cannot decide here, and the
# comparison says so rather than calling it agreement.

# %%
comparison = compare_trials(mine.bounties(), published.bounties(), zeror=11.02, bootstrap=200)
print(f"{len(comparison.cells)} cells compared, {len(comparison.disagreements)} differ significantly")
for arch, pair in comparison.regimes.items():
    print(arch, pair.ours, "vs", pair.reference, "->", pair.verdict)
