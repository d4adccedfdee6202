"""The decomposition method each command uses without ``--method``, as measured (torch-free).

``restorekit segment`` / ``decompose`` and :func:`restorekit.segment` /
:func:`restorekit.decompose` take their default from :func:`default_method`.
"""

from __future__ import annotations

#: the decomposition method each command uses without --method, as measured (benchmarks/results/segment.json,
#: decompose.json; docs/benchmarks.md): mean IoU over the 6 held-out cases without a hint, texture-split 0.613
#: against double-dip 0.550; with a box double-dip 0.669 (texture-split 0.610, random-walker 0.621).
#: Dehazing: dark-channel 19.89 dB / SSIM 0.840 in 0.003 s against double-dip 16.15 / 0.699 in 17 s.
SEGMENT_DEFAULT = "texture-split"
SEGMENT_DEFAULT_HINTED = "double-dip"
DECOMPOSE_DEFAULTS = {"dehaze": "dark-channel"}
DECOMPOSE_DEFAULT = "double-dip"


def default_method(command: str, task: str, hints: list[str]) -> str:
    """The decomposition method measured best for what was asked, when --method is not given."""
    if command == "segment":
        return SEGMENT_DEFAULT_HINTED if hints else SEGMENT_DEFAULT
    return DECOMPOSE_DEFAULTS.get(task, DECOMPOSE_DEFAULT)
