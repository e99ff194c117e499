"""Architecture strings: "[4*4, 2*8]" (segments of count*width), "L*W" in configuration files,
"LxW" in job names. One Architecture value serves all three spellings; psa.trial.topology turns it into
a model's layers."""

import re
from dataclasses import dataclass
from pathlib import Path

from psa.errors import PSAError
from psa.files import read_text

INPUTS, OUTPUTS = 784, 10
FAMILIES = ("simplemlp", "resmlp")
FAMILY_TITLES = {"simplemlp": "SimpleMLP", "resmlp": "ResMLP"}  # as in file names and titles
_SEGMENT = re.compile(r"^\s*(\d+)\s*[*xX×]\s*(\d+)\s*$")


@dataclass(frozen=True)
class Architecture:
    segments: tuple[tuple[int, int], ...]  # (layer count, width) runs, in order

    @classmethod
    def parse(cls, text: str) -> "Architecture":
        body = text.strip()
        if body.startswith("[") and body.endswith("]"):
            body = body[1:-1]
        parts = [p for p in body.split(",")]
        segments = []
        for part in parts:
            match = _SEGMENT.match(part)
            if not match:
                raise PSAError(
                    f"malformed architecture {text!r}: expected segments like '4*4' "
                    f'(layers*width), e.g. "[4*4, 2*8]" or "1*2048"'
                )
            count, width = int(match[1]), int(match[2])
            if count < 1 or width < 1:
                raise PSAError(f"malformed architecture {text!r}: layer counts and widths must be >= 1")
            segments.append((count, width))
        return cls(tuple(segments))

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden layer widths in order, e.g. [2*8] -> (8, 8)."""
        return tuple(w for count, w in self.segments for _ in range(count))

    @property
    def depth(self) -> int:
        return sum(count for count, _ in self.segments)

    def __str__(self) -> str:
        """The configuration-file spelling: '1*2048' or '4*4,2*8'."""
        return ",".join(f"{c}*{w}" for c, w in self.segments)

    @property
    def job_token(self) -> str:
        """The job-name spelling: '1x2048' (segments joined by '_')."""
        return "_".join(f"{c}x{w}" for c, w in self.segments)

    @property
    def label(self) -> str:
        """The figure spelling: '1×2048'."""
        return ",".join(f"{c}×{w}" for c, w in self.segments)


def arch_key(text: str) -> str:
    """Any spelling ('1024x1', '1*1024', job token '4x4_2x8') as the configuration key '1024*1'."""
    return str(Architecture.parse(text.replace("_", ",")))


def depth_and_width(arch: str) -> tuple[int, int, str]:
    """Sort key of architectures ('L*W' keys): by depth, the widest first at equal depth, as psa's
    exports and the analyses list them."""
    parsed = Architecture.parse(arch)
    return parsed.depth, -max(parsed.widths), arch


def check_family(family: str) -> str:
    if family not in FAMILIES:
        raise PSAError(f"unknown model family {family!r}: choose {' or '.join(FAMILIES)}")
    return family


def parse_list(text: str) -> list[Architecture]:
    """Architectures of a command line: "1*16,2*8", or bracketed ones split by ';'
    ("[4*4, 2*8];[1*8]")."""
    return [Architecture.parse(part) for part in text.split(";" if "[" in text else ",") if part.strip()]


def read_configurations(path: Path | str) -> list[Architecture]:
    """One architecture per line ('L*W'); blank lines and '#' comments are skipped."""
    archs = []
    for number, line in enumerate(read_text(path, "configuration file").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            archs.append(Architecture.parse(text))
        except PSAError as error:
            raise PSAError(f"{path}:{number}: {error}") from None
    if not archs:
        raise PSAError(f"configuration file {path} lists no architectures")
    return archs
