"""The run pipeline's contracts: geometry, one Problem, generators owning their input, the record."""

from __future__ import annotations

import json

import numpy as np
import pytest

import restorekit
from restorekit.plugins import reset_host
from tests.helpers import invoke

VIGNETTE = '''
import numpy as np
from restorekit import Degradation, hookimpl


class Vignette(Degradation):
    """A forward model with size-dependent state: a per-pixel gain built in prepare()."""

    name = "vignette"
    summary = "darkens the corners by a gain map made for the image's size"
    task = "deblur"

    def prepare(self, shape, rng, mode):
        out = super().prepare(shape, rng, mode)
        import torch

        _, h, w = shape
        yy, xx = np.mgrid[0:h, 0:w]
        r2 = ((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2
        self.gain = torch.from_numpy((1 - 0.8 * r2).astype(np.float32))[None, None]
        return out

    def forward(self, x):
        return x * self.gain  # fails unless x has exactly the prepared size


@hookimpl
def restorekit_register_degradations(registry):
    registry.add(Vignette)
'''


pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)


def test_size_dependent_degradation_runs_on_48x40_with_the_default_network(tmp_path, fake_plugin):
    """prepare() sees 48x40 and so does forward(), although the default skip net's canvas is 64x64."""
    import imageio.v3 as iio

    fake_plugin("rk-vignette", VIGNETTE)
    reset_host()
    rng = np.random.default_rng(0)
    iio.imwrite(tmp_path / "img.png", (rng.random((40, 48, 3)) * 255).astype(np.uint8))
    r = invoke(["run", tmp_path / "img.png", "--degrade", "vignette",
                "--prior", "dip", "--iters", "2", "--out", tmp_path / "o", "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["components"]["generator"]["name"] == "skip" and rec["settings"]["padded_shape"] == [3, 64, 64]
    assert rec["task"] == "deblur"  # declared by the degradation
    assert iio.imread(tmp_path / "o" / "restored.png").shape == (40, 48, 3)


def test_degradations_never_see_the_canvas(registry):
    seen = []

    class Spy(restorekit.Degradation):
        name = "spy"
        summary = "records the sizes its operator sees"
        noise_free = True

        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            return x

    from restorekit.registry import Entry

    registry.add(Entry(cls=Spy, plugin="test"))
    img = np.random.default_rng(1).random((20, 24, 3))
    r = restorekit.restore(img, degrade="spy", net="skip:levels=3,channels=8", iters=3, registry=registry)
    assert r.record["settings"]["padded_shape"] == [3, 24, 24]
    assert set(seen) == {(20, 24)}


OWN_INPUT = '''
import torch
from restorekit import Generator, hookimpl


class Decoder(torch.nn.Module):
    def __init__(self, channels, canvas):
        super().__init__()
        h, w = canvas
        self.register_buffer("code", torch.rand(1, 4, max(1, h // 4), max(1, w // 4), generator=torch.Generator().manual_seed(0)))
        self.canvas = canvas
        self.conv = torch.nn.Conv2d(4, channels, 1)

    def forward(self, z):
        assert z is None  # it owns its input
        up = torch.nn.functional.interpolate(self.code, size=self.canvas, mode="bilinear", align_corners=False)
        return torch.sigmoid(self.conv(up))


class TinyDecoder(Generator):
    name = "tiny-decoder"
    summary = "a decoder that owns its fixed input tensor"
    needs_input = False
    owns_input = True

    def stride(self):
        return 4

    def build(self, in_channels, out_channels, *, init=None, canvas=None):
        return Decoder(out_channels, canvas)


@hookimpl
def restorekit_register_generators(registry):
    registry.add(TinyDecoder)
'''


def test_a_generator_may_own_its_input(fake_plugin):
    fake_plugin("rk-decoder", OWN_INPUT)
    reset_host()
    from restorekit.plugins import get_registry

    img = np.random.default_rng(2).random((18, 22, 3))
    r = restorekit.restore(img, degrade="gaussian:25", prior="dip", net="tiny-decoder", iters=3,
                           registry=get_registry())
    assert r.image.shape == img.shape
    assert r.record["settings"]["padded_shape"] == [3, 20, 24]  # told the canvas: 18x22 padded to stride 4
    with pytest.raises(restorekit.UsageError, match="an untrained network is itself a prior"):
        restorekit.restore(img, prior="tv", net="tiny-decoder", iters=1, registry=get_registry())


def test_an_instance_that_adds_no_noise_is_not_stopped_early(registry):
    from restorekit.run.plan import auto_stop_spec

    assert auto_stop_spec([registry.create("degradation", "gaussian:0")]) is None
    assert auto_stop_spec([registry.create("degradation", "gaussian:5")]) is not None


def test_presets_work_from_python(tmp_path, registry):
    """A preset is resolved once, in the settings, for the CLI and the API alike."""
    from restorekit.run.settings import make_settings

    s = make_settings(registry, image=np.zeros((8, 8), np.uint8), preset="denoise-50", iters=5)
    assert s.degrade == ("gaussian:50",) and s.iters == 5 and s.lr == 0.01
    assert set(s.from_preset) >= {"degrade", "prior", "net", "lr"} and "iters" not in s.from_preset


def test_the_record_is_typed_and_round_trips(registry):
    from restorekit.run.record import SCHEMA_VERSION, RunRecord

    img = np.random.default_rng(3).random((16, 16))
    r = restorekit.restore(img, degrade="gaussian:25", net="skip:levels=2,channels=8", iters=2, registry=registry)
    assert isinstance(r.record, RunRecord) and r.record.schema_version == SCHEMA_VERSION
    assert r.record["result"]["iteration"] == r.record.result.iteration == 2
    back = RunRecord.from_json(r.record.to_json())
    assert back == r.record
    with pytest.raises(Exception):
        RunRecord.model_validate({**json.loads(r.record.to_json()), "surprise": 1})
