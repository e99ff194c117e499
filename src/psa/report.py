"""Publication LaTeX tables: parameter counts per architecture, and mean +- std peak accuracy per
mode with the winners in bold. Each table opens with a comment naming the packages it needs."""

import sys
from pathlib import Path

from psa import options
from psa.architecture import FAMILY_TITLES, read_configurations
from psa.files import write_text
from psa.modes import MODES
from psa.published import ASYMMETRIC, CONFIGURATIONS
from psa.results import SummaryEntry, default_path, read_summary
from psa.topology import parameter_count

TIE_TOLERANCE = 0.01  # percentage points: means this close to the best share the win
# Summary means carry two decimals, and in binary floating point 98.12 - 98.11 exceeds 0.01 slightly
# while 10.44 - 10.43 does not. The original compares as it is, and so the paper's table has decay
# alone win 1*1024 but full and output tie on 8*1; --tolerant-ties allows for the rounding.
_ROUNDING = 1e-9


def _needs(*packages: str) -> str:
    """The comment that opens a table: what its preamble must load."""
    return "% needs " + " and ".join(f"\\usepackage{{{package}}}" for package in packages)


def architecture_table(config_file: Path | str, asymmetric_file: Path | str, family: str = "simplemlp") -> str:
    """A longtable: the study's 98 rows are two pages long, more than any float can hold."""
    asymmetric = {str(arch) for arch in read_configurations(asymmetric_file)}
    rows = [
        f"{arch} & {parameter_count(arch, family):,} & {'Asymmetric' if str(arch) in asymmetric else 'Matched'} \\\\"
        for arch in read_configurations(config_file)
    ]
    header = r"\textbf{Architecture} & \textbf{Parameters} & \textbf{Parameter Matching} \\"
    return (
        "\n".join(
            [
                _needs("booktabs", "longtable"),
                r"\begin{longtable}{lrl}",
                r"\caption{Parameters for Network Architectures}",
                r"\label{tab:architecture_parameters} \\",
                r"\toprule",
                header,
                r"\midrule",
                r"\endfirsthead",
                r"\toprule",
                header,
                r"\midrule",
                r"\endhead",
                r"\bottomrule",
                r"\endlastfoot",
                *rows,
                r"\end{longtable}",
            ]
        )
        + "\n"
    )


def winners(entry: SummaryEntry, tolerant: bool = False) -> list[str]:
    """Modes whose mean is within TIE_TOLERANCE of the best, in the study's mode order; `tolerant`
    also lets in the means that miss it only by floating-point rounding."""
    if not entry.modes:
        return []
    best = max(stats.mean for stats in entry.modes.values())
    allowance = TIE_TOLERANCE + (_ROUNDING if tolerant else 0.0)
    return [mode for mode in MODES if mode in entry.modes and best - entry.modes[mode].mean <= allowance]


def accuracy_table(
    summary: dict[str, SummaryEntry], order: list[str], caption: str, label: str, tolerant: bool = False
) -> str:
    """Rows in `order` (architectures the summary lacks are skipped, ones it adds come last);
    a column for every mode, as the paper's, with N/A where the summary lacks one."""
    archs = [arch for arch in order if arch in summary] + [arch for arch in summary if arch not in order]
    rows = []
    for arch in archs:
        entry, best = summary[arch], winners(summary[arch], tolerant)
        cells = [arch]
        for mode in MODES:
            stats = entry.modes.get(mode)
            cell = "N/A" if stats is None else f"${stats.mean:.2f} \\pm {stats.std:.2f}$"
            # \bfseries leaves math as it is; \boldmath sets digits and \pm in bold.
            cells.append(f"{{\\boldmath{cell}}}" if mode in best else cell)
        names = "/".join(f"\\texttt{{{mode}}}" for mode in best)
        cells.append("--" if not best else f"Tie: {names}" if len(best) > 1 else names)
        rows.append(" & ".join(cells) + " \\\\")
    return (
        "\n".join(
            [
                _needs("booktabs", "graphicx"),
                r"\begin{table}[ht]",
                r"\centering",
                f"\\caption{{{caption}}}",
                f"\\label{{{label}}}",
                r"\resizebox{\textwidth}{!}{%",
                f"\\begin{{tabular}}{{{' '.join('l' * (len(MODES) + 2))}}}",
                r"\toprule",
                r"\textbf{Architecture} & "
                + " & ".join(f"\\texttt{{{mode}}}" for mode in MODES)
                + r" & \textbf{Winner} \\",
                " & " + " & ".join(r"Mean $\pm$ Std (\%)" for _ in MODES) + r" & \\",
                r"\midrule",
                *rows,
                r"\bottomrule",
                r"\end{tabular}",
                "}",
                r"\end{table}",
            ]
        )
        + "\n"
    )


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        write_text(output, text)


def run_architecture_table(args) -> None:
    _emit(architecture_table(args.config_file, args.asymmetric_file, args.family), args.out)


def run_accuracy_table(args) -> None:
    datafile = args.datafile or default_path("summary", args.family)
    caption = args.caption or (
        "Mean Peak Accuracy (\\%) with Standard Deviation over 10 Trials for "
        f"{FAMILY_TITLES[args.family]} Architectures"
    )
    order = [str(arch) for arch in read_configurations(args.order)]
    _emit(accuracy_table(read_summary(datafile), order, caption, args.label, args.tolerant_ties), args.out)


def _common(parser) -> None:
    options.add_family(parser)
    parser.add_argument("--out", type=Path, help="write the table to this file (default: print it)")
    options.alias(parser, "--output", dest="out", type=Path)


def configure_architecture_table(parser) -> None:
    parser.add_argument(
        "--configs",
        dest="config_file",
        type=options.configurations,
        default=CONFIGURATIONS,
        help="architectures, one L*W per line (default: the published study's)",
    )
    options.alias(parser, "--config-file", dest="config_file", type=options.configurations)
    parser.add_argument(
        "--asymmetric-file",
        type=Path,
        default=ASYMMETRIC,
        help="architectures outside the parameter-matching design (default: the published study's)",
    )
    _common(parser)
    parser.set_defaults(func=run_architecture_table)


def configure_accuracy_table(parser) -> None:
    parser.add_argument(
        "--summary-file", dest="datafile", type=Path, help="summary table (default: results/psa_<family>_summary.md)"
    )
    options.alias(parser, "--datafile", dest="datafile", type=Path)
    parser.add_argument(
        "--configs",
        dest="order",
        type=options.configurations,
        default=CONFIGURATIONS,
        help="configurations file giving the row order (default: the published study's)",
    )
    options.alias(parser, "--order", dest="order", type=options.configurations)
    parser.add_argument("--caption", help="table caption (default names the family)")
    parser.add_argument("--label", default="tab:results_summary_stats")
    parser.add_argument(
        "--tolerant-ties",
        action="store_true",
        help="psa's tie rule: a mean that misses the best by 0.01 only through floating-point rounding "
        "ties too (default: the original's strict comparison, as in the paper)",
    )
    _common(parser)
    parser.set_defaults(func=run_accuracy_table)
