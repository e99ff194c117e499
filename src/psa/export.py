"""`psa export`: a results store written out in the study's formats (docs/DESIGN.md section 5):
per family the summary, trials, convergence and LKG-growth tables, and a CSV of every trial."""

import csv
from pathlib import Path

from rich.console import Console

from psa import PSAError, results
from psa.architecture import Architecture, read_configurations
from psa.files import write_atomic
from psa.modes import MODES
from psa.store import DEFAULT_STORE, Store

CSV_FIELDS = ["family", "arch", "mode", "trial", "seed", "meta_loops", "lr", "batch_size", "weight_decay",
              "dropout", "bounty", "bounty_loop", "test_accuracy", "device", "seconds", "updated"]


def _arch_order(arch: str):
    parsed = Architecture.parse(arch)
    return (parsed.depth, -max(parsed.widths), arch)


def export(store: Store, out_dir: Path, configs: list[str] | None = None) -> list[Path]:
    """Write summary, trials, convergence and LKG-growth tables per family, plus a CSV; rows in
    the order of `configs` ("L*W"), then the rest by depth and width."""
    rows = store.completed()
    if not rows:
        raise PSAError(f"results store {store.path} holds no complete trials yet")
    written = []
    for family in sorted({r["family"] for r in rows}):
        mine = [r for r in rows if r["family"] == family]
        archs = sorted({r["arch"] for r in mine}, key=lambda a: (configs.index(a) if configs and a in configs
                                                                  else len(configs or []), _arch_order(a)))
        trials: dict = {arch: {} for arch in archs}
        series_conv, series_growth = [], []
        for arch in archs:
            for mode in MODES:
                cell = sorted((r for r in mine if r["arch"] == arch and r["mode"] == mode), key=lambda r: r["trial"])
                if not cell:
                    continue
                trials[arch][mode] = [None] * (cell[-1]["trial"] + 1)
                for r in cell:
                    trials[arch][mode][r["trial"]] = r["bounty"]
                    history = store.history(r["id"])
                    scores = [h.score for h in history]
                    growth = [0.0] + [b.lkg_score - a.lkg_score for a, b in zip(history, history[1:])]
                    series_conv.append(results.SeriesRow(arch, mode, r["trial"] + 1, scores, r["test_accuracy"]))
                    series_growth.append(results.SeriesRow(arch, mode, r["trial"] + 1, growth, r["test_accuracy"]))
        paths = {kind: results.default_path(kind, family, out_dir) for kind in
                 ("summary", "trials", "trials_convergence", "trials_lkg_growth")}
        results.write_summary(paths["summary"], trials, family)
        results.write_trials(paths["trials"], trials, family)
        results.write_series(paths["trials_convergence"], series_conv, "convergence", family)
        results.write_series(paths["trials_lkg_growth"], series_growth, "lkg_growth", family)
        written += paths.values()
    ordered = sorted(rows, key=lambda r: (r["family"], _arch_order(r["arch"]), MODES.index(r["mode"]), r["trial"]))

    def write_csv(tmp):
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(ordered)

    return written + [write_atomic(Path(out_dir) / "psa_trials.csv", write_csv)]


def run(args) -> None:
    if not Path(args.store).is_file():
        raise PSAError(f"results store {args.store} not found; run `psa sweep` first")
    configs = [str(a) for a in read_configurations(args.configs)] if args.configs else None
    store = Store(args.store)
    try:
        for path in export(store, Path(args.out), configs):
            Console(highlight=False).print(f"wrote {path}")
    finally:
        store.close()


def configure(parser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"results store (default: {DEFAULT_STORE})")
    parser.add_argument("--out", default="results", help="output folder (default: results/)")
    parser.add_argument("--configs", default=None, help="configurations file giving the row order")
    parser.set_defaults(func=run)
