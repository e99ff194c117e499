"""Publication LaTeX tables: parameter counts per architecture, and mean +- std peak accuracy per
mode with the winners in bold. Each table opens with a comment naming the packages it needs."""

from pathlib import Path

from psa.study.results import SummaryEntry
from psa.trial.architecture import read_configurations
from psa.trial.modes import MODES
from psa.trial.topology import parameter_count

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
