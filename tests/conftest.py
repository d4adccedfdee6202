"""Shared fixtures: a plugin host with only the built-ins, a fresh global host in tmp_path, tiny images.

Plain helpers (the in-process CLI runner, error-line checks) are in tests/helpers.py.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

# one thread: on a shared 2-core machine two torch threads fight other
# processes and tiny tensors get orders of magnitude slower
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def host():
    """A fresh plugin host with the built-in plugins only (no entry points)."""
    from restorekit.plugins import PluginHost

    return PluginHost().load(entry_points=[])


@pytest.fixture
def fresh_host(tmp_path, monkeypatch):
    """Run in tmp_path (default outputs land in tmp_path/runs) with a fresh global plugin host.

    Not autouse: CLI test modules opt in with
    ``pytestmark = pytest.mark.usefixtures("fresh_host")``.
    """
    from restorekit.plugins import reset_host

    monkeypatch.chdir(tmp_path)
    reset_host()
    yield
    reset_host()


@pytest.fixture
def one_thread():
    """torch on one thread for the test, the previous count restored after it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def face(tmp_path) -> Path:
    """A 25x25 gray face from scikit-image's bundled faces (the built-in `faces` network's kind), as a PNG."""
    import imageio.v3 as iio

    from restorekit.inspect.faces import example_face

    p = tmp_path / "face.png"
    iio.imwrite(p, np.round(example_face(3)[0] * 255).astype(np.uint8))
    return p


@pytest.fixture
def registry(host):
    return host.registry


@pytest.fixture
def rgb8(tmp_path) -> Path:
    """A 24x20 (odd-ish) 8-bit RGB test image with structure."""
    import imageio.v3 as iio

    yy, xx = np.mgrid[0:20, 0:24]
    img = np.stack([
        (xx * 10) % 256,
        (yy * 12) % 256,
        ((xx + yy) // 4 % 2) * 200 + 20,
    ], axis=-1).astype(np.uint8)
    p = tmp_path / "tiny.png"
    iio.imwrite(p, img)
    return p


@pytest.fixture
def fake_plugin(tmp_path, monkeypatch):
    """Install a plugin as a fake distribution on sys.path; returns a factory.

    ``fake_plugin(dist, module_source, entry_name=None, version="1.2.3")``
    writes ``<module>.py`` and ``<dist>-<version>.dist-info`` with an entry
    point in the ``restorekit`` group, so importlib.metadata discovers it.
    """
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))

    def make(dist: str, source: str, entry_name: str | None = None, version: str = "1.2.3") -> Path:
        module = dist.replace("-", "_")
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        info = root / f"{module}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[restorekit]\n{entry_name or dist} = {module}\n")
        import importlib

        importlib.invalidate_caches()
        sys.modules.pop(module, None)
        return root

    return make
