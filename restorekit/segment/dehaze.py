"""Dehazing by the dark channel prior, under its old import path.

Dehazing is a layer decomposition, not a segmentation: it lives in
:mod:`restorekit.decompose.dehaze`; this module re-exports its names so
``from restorekit.segment.dehaze import dark_channel_dehaze`` keeps working.
"""

from __future__ import annotations

from ..decompose.dehaze import (
    T0,
    DehazeResult,
    box_mean,
    dark_channel,
    dark_channel_dehaze,
    default_patch,
    estimate_airlight,
    guided_filter,
    recover_scene,
)

__all__ = ["T0", "default_patch", "dark_channel", "estimate_airlight", "box_mean", "guided_filter", "recover_scene",
           "DehazeResult", "dark_channel_dehaze"]
