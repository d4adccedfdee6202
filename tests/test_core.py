"""The core package (issue 21): the component kinds live in restorekit/core/, import no pipeline and no
torch, and every old import path (restorekit.components, restorekit.learn.nets, restorekit.segment.dehaze)
still gives the same objects."""

from __future__ import annotations

import subprocess
import sys

import restorekit
import restorekit.components as components
import restorekit.core as core

PUBLIC = ["Params", "Component", "Degradation", "Prior", "Generator", "Metric", "StoppingRule", "Decomposition",
          "Decomposed", "Hint", "Budget", "DECOMPOSITION_TASKS", "Network", "LoopOptions", "Geometry", "Problem",
          "KINDS", "describe_params", "format_range"]


def test_the_facade_gives_the_core_objects():
    for name in PUBLIC:
        assert getattr(components, name) is getattr(core, name), name
    assert set(components.__all__) <= set(PUBLIC)
    for name in restorekit.__all__:
        if hasattr(core, name):
            assert getattr(restorekit, name) is getattr(core, name), name
    assert set(core.KINDS.values()) == {core.Degradation, core.Prior, core.Generator, core.Metric,
                                        core.StoppingRule, core.Decomposition, core.Network}


def test_the_core_imports_no_pipeline_and_no_torch():
    code = ("import sys, restorekit.core; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.split('.')[:2] in "
            "(['restorekit', p] for p in ('run', 'segment', 'learn', 'batch', 'cli', 'inspect', 'nets', 'builtins'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_old_network_and_dehaze_paths_give_the_same_objects():
    import restorekit.decompose.dehaze as dehaze
    import restorekit.segment.dehaze as old_dehaze

    for name in dehaze.__all__:
        assert getattr(old_dehaze, name) is getattr(dehaze, name), name

    import pytest

    pytest.importorskip("torch")
    import restorekit.learn.nets as old_nets
    import restorekit.nets.learned as learned

    assert old_nets.ResUNet is learned.ResUNet and old_nets.ARCHITECTURES is learned.ARCHITECTURES
    assert old_nets.build is learned.build_architecture and old_nets.st_clamp is learned.st_clamp
    assert list(learned.ARCHITECTURES) == ["resunet"]
