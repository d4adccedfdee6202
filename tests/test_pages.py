"""Micrographs and stacks (issue 20): multi-page TIFFs read as stacks and restored page by page, 16-bit kept.

Tiny on purpose: 3 pages of 24x24 uint16 with synthetic noise; a direct solver (the default, BM3D
told the estimated noise, where restorekit-classic is installed) or a few steps of the built-in TV fit.
"""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from tests.helpers import invoke, one_line_error, signal_on_call

tifffile = pytest.importorskip("tifffile")

pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)

#: the built-in TV fit: a few steps, no plugin needed
FIT = ["--prior", "tv:0.02", "--net", "identity", "--iters", "40"]
SIGMA = 2500  # noise, in uint16 units (about 10 in 0-255 units)


def clean_pages(n: int = 3, size: int = 24) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return np.stack([8000 + 30000 * (0.5 + 0.5 * np.sin(xx / (4 + k)) * np.cos(yy / 5.0)) for k in range(n)])


def noisy_stack(path, n: int = 3, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A uint16 stack of ``n`` noisy pages at ``path``; (clean, noisy) as float and uint16."""
    clean = clean_pages(n)
    noisy = np.clip(np.rint(clean + np.random.default_rng(seed).normal(0, SIGMA, clean.shape)), 0, 65535)
    noisy = noisy.astype(np.uint16)
    tifffile.imwrite(path, noisy, photometric="minisblack")
    return clean, noisy


def rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


# -- reading and writing stacks -------------------------------------------------------------------------


def test_read_pages_gives_every_page_and_read_image_the_first(tmp_path):
    from restorekit.io import read_image, read_pages

    _, noisy = noisy_stack(tmp_path / "s.tif")
    pages = read_pages(tmp_path / "s.tif")
    assert [p.page for p in pages] == [0, 1, 2] and all(p.notes == [] for p in pages)
    for page, expected in zip(pages, noisy):
        assert page.dtype == np.uint16 and page.data.shape == (1, 24, 24)
        np.testing.assert_array_equal(np.rint(page.data[0] * 65535).astype(np.uint16), expected)
    # one image, as before: the first page, with its note
    assert read_image(tmp_path / "s.tif").notes == ["the TIFF holds 3 pages; restorekit used the first"]
    # a single-page file: one image, as read_image reads it
    tifffile.imwrite(tmp_path / "one.tif", noisy[0])
    (one,) = read_pages(tmp_path / "one.tif")
    assert one.page is None and one.notes == []
    np.testing.assert_array_equal(one.data, read_image(tmp_path / "one.tif").data)


def test_write_stack_round_trips_pages_shape_and_dtype(tmp_path):
    from restorekit.io import read_pages, write_stack

    rng = np.random.default_rng(0)
    for name, stack in [("g16.tif", rng.integers(0, 65535, (3, 5, 7), dtype=np.uint16)),
                        ("rgba8.tif", rng.integers(0, 255, (2, 5, 7, 4), dtype=np.uint8))]:
        write_stack(tmp_path / name, stack)
        back = tifffile.imread(tmp_path / name)
        assert back.dtype == stack.dtype and back.shape == stack.shape
        np.testing.assert_array_equal(back, stack)
        assert len(read_pages(tmp_path / name)) == len(stack)


def test_a_thumbnail_page_is_left_out_with_a_note(tmp_path):
    from restorekit.io import read_pages

    _, noisy = noisy_stack(tmp_path / "s.tif")
    with tifffile.TiffWriter(tmp_path / "t.tif") as tif:
        tif.write(noisy[0])
        tif.write(noisy[1, ::4, ::4], subfiletype=1)  # reduced resolution
    (page,) = read_pages(tmp_path / "t.tif")
    assert page.data.shape == (1, 24, 24)
    assert page.notes == ["the TIFF holds 2 pages; 1 reduced-resolution page (a thumbnail or pyramid level) left out"]


def test_a_stack_of_mixed_pages_is_refused_in_one_line(tmp_path):
    _, noisy = noisy_stack(tmp_path / "s.tif")
    with tifffile.TiffWriter(tmp_path / "mixed.tif") as tif:
        tif.write(noisy[0])
        tif.write(noisy[1, :12, :12])
    r = invoke(["run", tmp_path / "mixed.tif", *FIT])
    one_line_error(r, "its pages differ (page 1 is 24x24 with 1 channel of uint16 and page 2 12x12")
    assert not (tmp_path / "runs").exists()
    with tifffile.TiffWriter(tmp_path / "types.tif") as tif:
        tif.write(noisy[0])
        tif.write((noisy[1] // 257).astype(np.uint8))
    one_line_error(invoke(["run", tmp_path / "types.tif", *FIT]), "1 channel of uint8")


def test_the_pixel_limit_holds_a_stack_whole(tmp_path, monkeypatch):
    noisy_stack(tmp_path / "s.tif")
    monkeypatch.setenv("RESTOREKIT_MAX_PIXELS", str(24 * 24 * 2))  # one page fits, three do not
    one_line_error(invoke(["run", tmp_path / "s.tif", *FIT]), "a stack of 3 pages: 24x24x3")


# -- run: page by page ----------------------------------------------------------------------------------


def test_run_restores_each_page_of_a_uint16_stack(tmp_path):
    """The default (noise estimated per page, BM3D told it): a 3-page uint16 stack in, 3 pages out."""
    pytest.importorskip("restorekit_classic")
    pytest.importorskip("bm3d")
    clean, noisy = noisy_stack(tmp_path / "s.tif")
    r = invoke(["run", tmp_path / "s.tif", "--out", tmp_path / "o"])
    assert r.exit_code == 0, r.output
    for k in (1, 2, 3):
        assert f"page {k}/3" in r.stderr
    out = tifffile.imread(tmp_path / "o/restored.tif")
    assert out.shape == (3, 24, 24) and out.dtype == np.uint16
    for k in range(3):
        assert (out[k] != noisy[k]).any()
        assert rms(out[k], clean[k]) < 0.5 * rms(noisy[k], clean[k])  # each page denoised on its own
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o/degraded.tif"), noisy)  # the observation
    record = json.loads((tmp_path / "o/run.json").read_text())
    assert record["status"] == "complete" and record["input"]["dtype"] == "uint16"
    assert record["files"]["restored"] == "restored.tif"
    notes = record["notes"]
    assert "stack of 3 pages of 24x24" in notes[0]
    lines = [n for n in notes if n.startswith("page ") and " restored in " in n]
    assert len(lines) == 3
    # each page's own noise estimate, in the image's own units too (the truth: 2500)
    levels = [float(n.split(" = ")[1].split(" ")[0]) for n in lines]
    assert all(SIGMA / 1.4 < v < SIGMA * 1.4 for v in levels), lines
    # and in the record: every page's own estimate and check
    assert record["input"]["pages"] == 3
    assert [p["page"] for p in record["pages"]] == [1, 2, 3]
    assert all(p["status"] == "complete" and p["noise"]["rms_255"] and p["safeguard"] for p in record["pages"])
    assert len({tuple(p["noise"]["rms_255"]) for p in record["pages"]}) == 3  # estimated per page
    from restorekit.run.record import RunRecord

    assert RunRecord.from_json((tmp_path / "o/run.json").read_text()).pages[2].page == 3


def _calibration(path):
    with tifffile.TiffFile(path) as tif:
        meta = tif.imagej_metadata or {}
        tags = tif.pages.first.tags
        return (tif.series[0].axes, {k: meta.get(k) for k in ("spacing", "unit", "finterval")},
                tags["XResolution"].value, tags["YResolution"].value, tags["ResolutionUnit"].value)


@pytest.mark.parametrize("axes, metadata", [
    ("ZYX", {"spacing": 0.5, "unit": "um"}),          # a z-stack: voxel depth and unit
    ("TYX", {"finterval": 2.5, "unit": "micron"}),    # a time series: frame interval
], ids=["z-stack", "time-series"])
def test_a_restored_imagej_stack_keeps_its_axes_pixel_size_and_calibration(tmp_path, axes, metadata):
    """What the microscope recorded (ImageJ's axes, spacing / frame interval, unit, and the pixel size in the
    resolution tags) is in restored.tif and degraded.tif as in the input; the pixels are the restored ones."""
    _, noisy = noisy_stack(tmp_path / "plain.tif")
    src = tmp_path / "s.tif"
    tifffile.imwrite(src, noisy, imagej=True, resolution=(1 / 0.13, 1 / 0.13), metadata={"axes": axes, **metadata})
    r = invoke(["run", src, *FIT, "--out", tmp_path / "o"])
    assert r.exit_code == 0, r.output
    want = _calibration(src)
    assert want[0] == axes and want[1] == {"finterval": None, "spacing": None, "unit": None, **metadata}
    for name in ("restored.tif", "degraded.tif"):
        assert _calibration(tmp_path / "o" / name) == want, name
    out = tifffile.imread(tmp_path / "o/restored.tif")
    assert out.shape == noisy.shape and out.dtype == np.uint16 and (out != noisy).any()


def test_a_plain_tiff_stack_keeps_its_pixel_size(tmp_path):
    """A stack that is not ImageJ's keeps its resolution tags (pixels per centimetre here) and stays plain."""
    _, noisy = noisy_stack(tmp_path / "plain.tif")
    src = tmp_path / "s.tif"
    tifffile.imwrite(src, noisy, photometric="minisblack", resolution=(2000.0, 4000.0), resolutionunit="CENTIMETER")
    r = invoke(["run", src, *FIT, "--out", tmp_path / "o", "--save", "restored"])
    assert r.exit_code == 0, r.output
    with tifffile.TiffFile(tmp_path / "o/restored.tif") as tif:
        assert tif.imagej_metadata is None and len(tif.pages) == 3
        tags = tif.pages.first.tags
        assert tags["XResolution"].value == (2000, 1) and tags["YResolution"].value == (4000, 1)
        assert tags["ResolutionUnit"].value == 3  # centimetre


def test_a_super_resolved_stack_keeps_the_size_of_a_pixel_in_microns(tmp_path):
    """x2 super-resolution: twice the pixels per unit in restored.tif (the same field of view), the input's in
    the observation it was given as; ImageJ's origin in pixels scales with them."""
    from restorekit.io.codecs import _resized_calibration

    _, noisy = noisy_stack(tmp_path / "plain.tif")
    src = tmp_path / "s.tif"
    tifffile.imwrite(src, noisy, photometric="minisblack", resolution=(2000.0, 4000.0), resolutionunit="CENTIMETER")
    r = invoke(["run", src, "--mode", "restore", "--degrade", "downsample:2", "--prior", "tv:0.01", "--net",
                "identity", "--iters", "3", "--out", tmp_path / "o"])
    assert r.exit_code == 0, r.output
    for name, size, res in (("restored.tif", 48, (4000, 8000)), ("degraded.tif", 24, (2000, 4000))):
        with tifffile.TiffFile(tmp_path / "o" / name) as tif:
            tags = tif.pages.first.tags
            assert tif.pages.first.shape[:2] == (size, size), name
            got = tuple(v[0] / v[1] for v in (tags["XResolution"].value, tags["YResolution"].value))
            assert got == pytest.approx(res), name
    cal = {"size": (24, 30), "resolution": ((1000, 1), (500, 1)), "imagej": {"axes": "ZYX", "xorigin": 3.0, "spacing": 2}}
    scaled = _resized_calibration(cal, (48, 90))
    assert scaled["resolution"] == pytest.approx((3000, 1000))
    assert scaled["imagej"] == {"axes": "ZYX", "xorigin": 9.0, "spacing": 2}
    assert _resized_calibration(cal, (24, 30)) is cal


def test_restore_on_a_stack_returns_the_stack_and_its_pages(tmp_path):
    from restorekit import restore

    clean, noisy = noisy_stack(tmp_path / "s.tif")
    r = restore(tmp_path / "s.tif", prior="tv:0.02", net="identity", iters=40)
    assert r.image.shape == (3, 24, 24) and r.image.dtype == np.uint16
    assert r.restored.shape == (3, 1, 24, 24) and r.degraded.shape == (3, 1, 24, 24)
    assert len(r.pages) == 3 and not r.interrupted and r.record.status == "complete"
    for k, page in enumerate(r.pages):
        np.testing.assert_array_equal(page.image, r.image[k])
        assert page.source.page == k and page.record.noise is not None  # its own estimate
        assert page.record.settings.seed == 0  # the run's seed, every page
        assert rms(r.image[k], clean[k]) < rms(noisy[k], clean[k])
    assert r.record.result.iterations_run == sum(p.record.result.iterations_run for p in r.pages)
    # a page of the stack is what a run on that page alone gives
    tifffile.imwrite(tmp_path / "p2.tif", noisy[1])
    alone = restore(tmp_path / "p2.tif", prior="tv:0.02", net="identity", iters=40)
    np.testing.assert_array_equal(alone.image, r.image[1])


def test_a_reference_stack_scores_each_page(tmp_path):
    from restorekit import restore

    clean, _ = noisy_stack(tmp_path / "s.tif")
    tifffile.imwrite(tmp_path / "c.tif", np.rint(clean).astype(np.uint16), photometric="minisblack")
    r = restore(tmp_path / "s.tif", reference=tmp_path / "c.tif", prior="tv:0.02", net="identity", iters=40)
    psnr = [p.metrics["psnr"] for p in r.pages]
    assert r.metrics["psnr"] == pytest.approx(np.mean(psnr))
    assert all(p.metrics["psnr"] > p.baseline["psnr"] for p in r.pages)
    tifffile.imwrite(tmp_path / "c1.tif", np.rint(clean[0]).astype(np.uint16))
    one_line_error(invoke(["run", tmp_path / "s.tif", "--reference", tmp_path / "c1.tif", *FIT]),
                   "the image is a stack of 3 pages but the reference has 1")


# -- Ctrl-C ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_page_2_keeps_page_1(tmp_path, monkeypatch, sig, code):
    """Ctrl-C as page 2 starts: page 1 restored, pages 2 and 3 as read, the record says so, exit 130."""
    from restorekit.run import pages

    _, noisy = noisy_stack(tmp_path / "s.tif")
    signal_on_call(monkeypatch, pages, "solve", 2, sig)
    r = invoke(["run", tmp_path / "s.tif", *FIT, "--out", tmp_path / "o"])
    assert r.exit_code == code, r.output
    assert "wrote the result so far" in r.stderr
    # the message says what was kept (the restored pages) and what was not (the rest, as read)
    assert ("(interrupted at page 1/3: page 1 was restored; pages 2-3 were not started: the result holds them "
            "as read)") in " ".join(r.stderr.split())
    out = tifffile.imread(tmp_path / "o/restored.tif")
    assert out.shape == (3, 24, 24) and out.dtype == np.uint16
    assert (out[0] != noisy[0]).any()
    np.testing.assert_array_equal(out[1:], noisy[1:])
    record = json.loads((tmp_path / "o/run.json").read_text())
    assert record["status"] == "interrupted"
    assert any(n.startswith("interrupted at page 1/3: page 1 was restored; pages 2-3 were not started")
               for n in record["notes"]), record["notes"]
    assert [p["status"] for p in record["pages"]] == ["complete", "not started", "not started"]
    # no staging folder, no lock; page 1 kept beside the named --out for the same command again
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob(".*")) == [".o.rk-pages"]
    assert sorted(p.name for p in (tmp_path / ".o.rk-pages").iterdir()) == ["page-0001.npz", "pages.json"]
    assert "its finished pages are kept: the same command with --overwrite continues" in " ".join(r.stderr.split())


def test_an_interrupted_fit_keeps_its_result_so_far(tmp_path):
    from restorekit import restore

    _, noisy = noisy_stack(tmp_path / "s.tif")

    def ctrl_c(progress):
        if progress.page == "page 2/3" and progress.iteration == 5:
            raise KeyboardInterrupt

    r = restore(tmp_path / "s.tif", prior="tv:0.02", net="identity", iters=40, callback=ctrl_c)
    assert r.interrupted and r.record.status == "interrupted" and len(r.pages) == 2
    assert r.pages[1].interrupted and r.pages[1].record.result.iterations_run == 4
    assert (r.image[0] != noisy[0]).any() and (r.image[1] != noisy[1]).any()
    np.testing.assert_array_equal(r.image[2], noisy[2])
    assert any("page 2's fit was interrupted" in n and "page 3 was not started" in n for n in r.record.notes)


def test_a_signal_before_any_page_has_a_result_writes_nothing(tmp_path, monkeypatch):
    from restorekit.run import pages

    noisy_stack(tmp_path / "s.tif")
    signal_on_call(monkeypatch, pages, "prepare", 1)
    r = invoke(["run", tmp_path / "s.tif", *FIT])
    assert r.exit_code == 130
    assert "nothing was written" in r.stderr
    assert not (tmp_path / "runs").exists()


# -- 16 bits --------------------------------------------------------------------------------------------


def test_a_uint16_image_stays_uint16_and_its_noise_is_estimated_below_one_8bit_step(tmp_path):
    """Noise of 40 in 0-65535 units is 0.16 of an 8-bit step: quantised to 8 bits it would be lost."""
    from restorekit.io import read_image
    from restorekit.noise import estimate

    rng = np.random.default_rng(3)
    clean = np.repeat(np.repeat(10000 + 40000 * rng.random((4, 4)), 16, 0), 16, 1)  # flat 16x16 patches
    noisy = np.rint(clean + rng.normal(0, 40, clean.shape)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "n.tif", noisy)
    model = estimate(read_image(tmp_path / "n.tif").data)
    assert 40 / 1.2 < model.rms[0] * 65535 < 40 * 1.2  # measured: 42.9
    eight = (np.rint(noisy / 257) / 255).astype(np.float32)[None]
    assert estimate(eight).rms[0] * 65535 > 40 * 1.3  # what 8 bits would have given (measured: 57.5)
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "n.png", noisy)
    for name, suffix in (("n.tif", "tif"), ("n.png", "png")):
        r = invoke(["run", tmp_path / name, *FIT, "--out", tmp_path / f"o-{suffix}"])
        assert r.exit_code == 0, r.output
        out = iio.imread(tmp_path / f"o-{suffix}/restored.{suffix}")
        assert out.dtype == np.uint16 and out.shape == (64, 64)


# -- batch ----------------------------------------------------------------------------------------------


def test_batch_restores_a_stack_page_by_page(tmp_path):
    import imageio.v3 as iio

    (tmp_path / "in").mkdir()
    _, noisy = noisy_stack(tmp_path / "in/s.tif")
    iio.imwrite(tmp_path / "in/a.png", (noisy[0] // 257).astype(np.uint8))
    r = invoke(["batch", "in", "out", *FIT, "--workers", "1", "--stack", "2"])
    assert r.exit_code == 0, r.output
    out = tifffile.imread(tmp_path / "out/s/restored.tif")
    assert out.shape == (3, 24, 24) and out.dtype == np.uint16
    assert all((out[k] != noisy[k]).any() for k in range(3))
    assert iio.imread(tmp_path / "out/a/restored.png").shape == (24, 24)


def test_every_malformed_file_reads_as_pages_or_one_line(tmp_path, monkeypatch):
    """read_pages on the malformed corpus (tests/test_io_malformed.py): images, or one line, as read_image."""
    from restorekit.errors import UsageError
    from restorekit.io import Image, read_pages
    from tests.test_io_malformed import CASES, MAX_PIXELS_ENV

    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    for name, (make, expected) in CASES.items():
        suffix = ".tif" if "tif" in name else ".jpg" if "jp" in name else ".png"
        path = tmp_path / f"{name}{suffix}"
        path.write_bytes(make())
        try:
            pages = read_pages(path)
        except UsageError as exc:
            message = str(exc)
            assert message.splitlines() == [message] and message.startswith("cannot read image "), message
            assert expected != "image", (name, message)
            assert expected is None or expected in message, (name, message)
            continue
        assert expected in (None, "image"), (name, expected)
        assert pages and all(isinstance(p, Image) and p.data.dtype == np.float32 for p in pages), name
    assert len(read_pages(tmp_path / "multipage.tif.tif")) == 4


# -- batch --resume: a stack continues from its first page not finished ------------------------------------


def _hidden(out) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob(".*"))


def _stack_notes(folder) -> list[str]:
    """run.json's notes, times blanked (two runs take different times)."""
    import re

    return [re.sub(r" in \d+\.\d s", " in T s", n) for n in json.loads((folder / "run.json").read_text())["notes"]]


def test_batch_resume_continues_a_stack_from_its_first_page_not_finished(tmp_path, monkeypatch):
    """Ctrl-C as page 3 of 4 starts: pages 1-2 are kept on disk; --resume restores pages 3-4 only, and the
    stack it writes is the one an uninterrupted batch writes."""
    from restorekit.run import pages

    (tmp_path / "in").mkdir()
    clean = np.concatenate([clean_pages(3), clean_pages(3)[:1] * 0.9])
    noisy = np.clip(np.rint(clean + np.random.default_rng(5).normal(0, SIGMA, clean.shape)), 0, 65535)
    tifffile.imwrite(tmp_path / "in/s.tif", noisy.astype(np.uint16), photometric="minisblack")
    source = (tmp_path / "in/s.tif").read_bytes()
    assert invoke(["batch", "in", "ref", *FIT, "--workers", "1"]).exit_code == 0
    with monkeypatch.context() as m:
        signal_on_call(m, pages, "solve", 3)
        r = invoke(["batch", "in", "out", *FIT, "--workers", "1"])
    assert r.exit_code == 130, r.output
    kept = tmp_path / "out/.s.rk-pages"
    assert sorted(p.name for p in kept.iterdir()) == ["page-0001.npz", "page-0002.npz", "pages.json"]
    assert not (tmp_path / "out/s").exists()  # nothing written for the stack before every page is done
    from restorekit.run.kept import PageStore

    saved = []
    real_save = PageStore.save
    monkeypatch.setattr(PageStore, "save", lambda self, k, result: (saved.append(k), real_save(self, k, result)))
    solves = signal_on_call(monkeypatch, pages, "solve", 0)  # counts the pages restored
    r = invoke(["batch", "in", "out", *FIT, "--workers", "1", "--resume"])
    assert r.exit_code == 0, r.output
    assert solves == [2] and saved == [3, 4]  # pages 1 and 2 were neither restored nor written again
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out/s/restored.tif"),
                                  tifffile.imread(tmp_path / "ref/s/restored.tif"))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out/s/degraded.tif"), noisy.astype(np.uint16))
    got, want = _stack_notes(tmp_path / "out/s"), _stack_notes(tmp_path / "ref/s")
    assert "pages 1-2 of 4 were restored by an earlier attempt that was stopped, and kept: their results, " \
           "records and times are that attempt's" in got
    assert [n for n in got if "earlier attempt" not in n] == want  # the same pages, noise estimates, checks
    rec, ref = (json.loads((tmp_path / d / "s/run.json").read_text()) for d in ("out", "ref"))
    assert rec["status"] == "complete" and [p["status"] for p in rec["pages"]] == ["complete"] * 4
    assert rec["result"]["metrics"] == ref["result"]["metrics"]
    assert [p["iterations_run"] for p in rec["pages"]] == [p["iterations_run"] for p in ref["pages"]]
    assert _hidden(tmp_path / "out") == []  # the kept pages went with the stack's commit
    assert (tmp_path / "in/s.tif").read_bytes() == source  # the input, never written to


def test_kept_pages_of_another_run_or_half_written_are_not_taken(tmp_path, monkeypatch):
    """A kept folder says whose pages it holds: other options (or another input) empty it; a temporary file
    of a killed write and a page file that cannot be read are removed and those pages restored again."""
    from restorekit.run import pages
    from restorekit.run.kept import PageStore

    (tmp_path / "in").mkdir()
    noisy_stack(tmp_path / "in/s.tif")
    with monkeypatch.context() as m:
        signal_on_call(m, pages, "solve", 3)
        assert invoke(["batch", "in", "out", *FIT, "--workers", "1"]).exit_code == 130
    kept = tmp_path / "out/.s.rk-pages"
    (kept / "page-0002.npz").write_bytes(b"PK\x03\x04 cut short")  # as a disk fault would leave it
    (kept / ".page-0003.npz.x1y2.tmp").write_bytes(b"half")  # a write killed before its rename
    solves = signal_on_call(monkeypatch, pages, "solve", 0)
    r = invoke(["batch", "in", "out", *FIT, "--workers", "1", "--resume"])
    assert r.exit_code == 0, r.output
    assert solves == [2]  # page 2 (unreadable) and page 3; page 1 kept
    assert "page 1 of 3 was restored by an earlier attempt" in " ".join(_stack_notes(tmp_path / "out/s"))
    assert _hidden(tmp_path / "out") == []
    # a kill between the stack's commit and the removal of its pages: the next --resume skips the stack (done,
    # its files verified) and removes what was left
    kept.mkdir()
    (kept / "page-0001.npz").write_bytes(b"left")
    r = invoke(["batch", "in", "out", *FIT, "--workers", "1", "--resume", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["skipped"] == 1 and solves == [2]
    assert _hidden(tmp_path / "out") == []
    # the store itself: pages of other options, or of an input whose bytes changed, are not given back
    src = tmp_path / "in/s.tif"
    first = PageStore(tmp_path / "k", {"iters": 40}, [src])
    assert first.begin(3) == []
    (tmp_path / "k/page-0001.npz").write_bytes(b"x")
    assert PageStore(tmp_path / "k", {"iters": 40}, [src]).begin(3) == [1]
    assert PageStore(tmp_path / "k", {"iters": 41}, [src]).begin(3) == []
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["pages.json"]
    (tmp_path / "k/page-0001.npz").write_bytes(b"x")
    noisy_stack(src, seed=2)
    assert PageStore(tmp_path / "k", {"iters": 41}, [src]).begin(3) == []
    # what batch says a page depends on: the options, and the plugins' versions (an upgraded plugin's pages
    # are not an older one's)
    from restorekit.batch.inputs import Item
    from restorekit.batch.job import page_identity
    from restorekit.plugins import get_host

    item = Item(key="s.tif", input=str(src), out=str(tmp_path / "out/s"), degrade=(), prior=("bm3d",), net=None,
                reference=None, side_inputs=())
    before = page_identity(item, {"seed": 0, "iters": 40})
    assert page_identity(item, {"seed": 1, "iters": 40}) != before
    monkeypatch.setattr(get_host().plugins[0], "version", "99.0")
    assert page_identity(item, {"seed": 0, "iters": 40}) != before


def test_a_stack_killed_mid_page_resumes_from_the_pages_it_kept(tmp_path):
    """SIGKILL (no clean-up at all) while page 3 of 5 is fitted, in a real batch process: --resume restores
    pages 3-5 only and writes the stack an uninterrupted batch writes; every kept page was written once."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    (tmp_path / "in").mkdir()
    clean = np.concatenate([clean_pages(3), clean_pages(2)])
    noisy = np.clip(np.rint(clean + np.random.default_rng(7).normal(0, SIGMA, clean.shape)), 0, 65535)
    tifffile.imwrite(tmp_path / "in/s.tif", noisy.astype(np.uint16), photometric="minisblack")
    slow = ["--prior", "tv:0.02", "--net", "identity", "--iters", "600", "--workers", "1"]
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(root))
    p = subprocess.Popen([sys.executable, "-m", "restorekit.cli", "batch", "in", "out", *slow], cwd=tmp_path,
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kept = tmp_path / "out/.s.rk-pages"
    deadline = time.monotonic() + 120
    while not (kept / "page-0002.npz").exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    p.kill()
    p.wait(timeout=60)
    assert p.returncode == -9
    done = sorted(q.name for q in kept.glob("page-*.npz"))
    assert done[:2] == ["page-0001.npz", "page-0002.npz"] and len(done) < 5, done
    stats = {name: (kept / name).stat().st_ino for name in done}
    assert not (tmp_path / "out/s/restored.tif").exists()  # the stack is written only once it is whole
    from restorekit.run import pages

    with pytest.MonkeyPatch.context() as m:
        solves = signal_on_call(m, pages, "solve", 0)
        assert {q.name: q.stat().st_ino for q in kept.glob("page-*.npz")} == stats  # untouched until resumed
        r = invoke(["batch", "in", "out", *slow, "--resume"])
    assert r.exit_code == 0, r.output
    assert solves == [5 - len(done)]
    assert invoke(["batch", "in", "ref", *slow]).exit_code == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out/s/restored.tif"),
                                  tifffile.imread(tmp_path / "ref/s/restored.tif"))
    assert f"pages 1-{len(done)} of 5 were restored by an earlier attempt" in " ".join(_stack_notes(tmp_path / "out/s"))
    assert _hidden(tmp_path / "out") == []


def test_run_into_a_named_out_continues_a_stopped_stack_from_its_kept_pages(tmp_path, monkeypatch):
    """`run STACK --out o` stopped at page 3 of 5 keeps pages 1-2 beside o; the same command again (--overwrite:
    the stopped run wrote its result so far) restores pages 3-5 only and writes what an uninterrupted run
    writes; the kept pages are removed then.  Without --out nothing is kept (a new folder each time)."""
    from restorekit.run import pages

    clean = np.concatenate([clean_pages(3), clean_pages(2)])
    noisy = np.clip(np.rint(clean + np.random.default_rng(7).normal(0, SIGMA, clean.shape)), 0, 65535)
    tifffile.imwrite(tmp_path / "s.tif", noisy.astype(np.uint16), photometric="minisblack")
    with pytest.MonkeyPatch.context() as m:
        signal_on_call(m, pages, "solve", 3)
        r = invoke(["run", "s.tif", *FIT, "--out", "o"])
    assert r.exit_code == 130, r.output
    assert sorted(q.name for q in (tmp_path / ".o.rk-pages").glob("page-*.npz")) == ["page-0001.npz", "page-0002.npz"]
    solves = signal_on_call(monkeypatch, pages, "solve", 0)
    r = invoke(["run", "s.tif", *FIT, "--out", "o", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert solves == [3] and "pages 1-2 of 5 were restored by an earlier attempt" in " ".join(_stack_notes(tmp_path / "o"))
    assert not (tmp_path / ".o.rk-pages").exists()
    assert invoke(["run", "s.tif", *FIT, "--out", "ref"]).exit_code == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o/restored.tif"), tifffile.imread(tmp_path / "ref/restored.tif"))
    with pytest.MonkeyPatch.context() as m:
        signal_on_call(m, pages, "solve", 2)
        assert invoke(["run", "s.tif", *FIT]).exit_code == 130
    assert [q.name for q in (tmp_path / "runs").iterdir()] == ["s-001"]  # kept nothing beside it


def test_kept_pages_never_touch_a_folder_that_holds_an_input(tmp_path, monkeypatch):
    """An input inside the folder pages would be kept in (`run .o.rk-pages/s.tif --out o`): the store keeps
    nothing there, so the input and the folder's other files are neither emptied, replaced nor removed, after
    a Ctrl-C or a complete run; batch's clean-up of kept pages spares it the same way."""
    from restorekit.run import pages
    from restorekit.run.kept import PageStore, discard_kept

    folder = tmp_path / ".o.rk-pages"
    folder.mkdir()
    _, noisy = noisy_stack(folder / "s.tif")
    (folder / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.MonkeyPatch.context() as m:
        signal_on_call(m, pages, "solve", 2)
        assert invoke(["run", folder / "s.tif", *FIT, "--out", tmp_path / "o"]).exit_code == 130
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    r = invoke(["run", folder / "s.tif", *FIT, "--out", tmp_path / "o", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    store = PageStore(folder, {}, [folder / "s.tif"])
    assert not store.active and store.begin(3) == []
    store.discard()
    discard_kept(tmp_path / "o", [folder / "s.tif"])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    discard_kept(tmp_path / "o", [tmp_path / "elsewhere.tif"])  # holding no input: removed
    assert not folder.exists()


# -- restorekit.restore(..., pages=True): a stack held in memory -------------------------------------------


def test_restore_takes_a_stack_in_memory_with_pages_true(tmp_path):
    """An array whose first axis is pages, said so with pages=True, is restored as the same stack in a TIFF
    is: same shape, same dtype, each page its own run; without pages=True an array is one image."""
    from restorekit import UsageError, restore

    clean, noisy = noisy_stack(tmp_path / "s.tif")
    fit = dict(prior="tv:0.02", net="identity", iters=40)
    r = restore(noisy, pages=True, **fit)
    assert r.image.shape == noisy.shape and r.image.dtype == np.uint16 and len(r.pages) == 3
    assert r.record.status == "complete" and r.record.input.pages == 3
    assert r.record.notes[0].startswith("the array is a stack of 3 pages of 24x24 (gray, uint16)")
    np.testing.assert_array_equal(r.image, restore(tmp_path / "s.tif", **fit).image)  # as from the file
    for k in range(3):
        assert rms(r.image[k], clean[k]) < rms(noisy[k], clean[k])
    # a reference stack in memory: each page scored against its own
    ref = restore(noisy, pages=True, reference=np.rint(clean).astype(np.uint16), **fit)
    assert [p.metrics["psnr"] > p.baseline["psnr"] for p in ref.pages] == [True] * 3
    # colour pages, and a trailing channel of one, come back in the shape they went in
    rgb = np.random.default_rng(0).integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    out = restore(rgb, pages=True, **fit)
    assert out.image.shape == rgb.shape and out.image.dtype == np.uint8 and len(out.pages) == 2
    assert restore(rgb[..., :1], pages=True, **fit).image.shape == (2, 16, 20, 1)
    # (H, W, 3) without pages=True is one RGB image, never a stack of three
    one = restore(rgb[0], **fit)
    assert one.image.shape == (16, 20, 3) and one.pages == []
    # a path with pages=True: every page of its file, a stack even of one page
    tifffile.imwrite(tmp_path / "one.tif", noisy[0])
    single = restore(tmp_path / "one.tif", pages=True, **fit)
    assert single.image.shape == (1, 24, 24) and len(single.pages) == 1
    # an array that can only be a stack, given without pages=True, and pages=True on one image: one line each
    with pytest.raises(UsageError, match=r"if its first axis is pages \(a stack of 3\), pass pages=True"):
        restore(noisy, **fit)
    with pytest.raises(UsageError, match=r"\(got shape \(24, 24\)\); drop pages=True for one image"):
        restore(noisy[0], pages=True, **fit)
    with pytest.raises(UsageError, match="page 1 of 2: invalid image array: dtype int64"):
        restore(np.zeros((2, 8, 8), dtype=np.int64), pages=True, **fit)


# -- OME-TIFF: the OME-XML goes with the stack where it still describes it ------------------------------------


def _ome_stack(path, noisy):
    tifffile.imwrite(path, noisy, ome=True, photometric="minisblack", metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.13, "PhysicalSizeXUnit": "µm", "PhysicalSizeY": 0.13,
        "PhysicalSizeYUnit": "µm", "PhysicalSizeZ": 0.5, "PhysicalSizeZUnit": "µm", "Channel": {"Name": ["DAPI"]}})


def _ome_pixels(path) -> dict:
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome, path
        ome = tifffile.xml2dict(tif.ome_metadata)["OME"]
        return {"axes": tif.series[0].axes, "shape": tif.series[0].shape, "uuid": ome["UUID"],
                **{k: v for k, v in ome["Image"]["Pixels"].items() if k != "TiffData"}}


def test_an_ome_tiff_stack_keeps_its_ome_xml(tmp_path):
    """restored.tif and degraded.tif of an OME-TIFF z-stack carry its OME description: pixel sizes, units,
    axes, channel name (a new UUID: another file); run.json says so; the pixels are the restored ones."""
    _, noisy = noisy_stack(tmp_path / "plain.tif")
    _ome_stack(tmp_path / "s.ome.tif", noisy)
    r = invoke(["run", tmp_path / "s.ome.tif", *FIT, "--out", tmp_path / "o"])
    assert r.exit_code == 0, r.output
    want = _ome_pixels(tmp_path / "s.ome.tif")
    assert want["PhysicalSizeX"] == 0.13 and want["PhysicalSizeZ"] == 0.5 and want["Channel"]["Name"] == "DAPI"
    for name in ("restored.tif", "degraded.tif"):
        got = _ome_pixels(tmp_path / "o" / name)
        assert got["uuid"] != want["uuid"]
        assert {k: v for k, v in got.items() if k != "uuid"} == {k: v for k, v in want.items() if k != "uuid"}
    out = tifffile.imread(tmp_path / "o/restored.tif")
    assert out.shape == noisy.shape and out.dtype == np.uint16 and (out != noisy).any()
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o/degraded.tif"), noisy)
    notes = json.loads((tmp_path / "o/run.json").read_text())["notes"]
    assert any(n.startswith("restored.tif and degraded.tif carry the input's OME-XML as it is") for n in notes)
    # --save restored: the one file, the same description
    r = invoke(["run", tmp_path / "s.ome.tif", *FIT, "--out", tmp_path / "r", "--save", "restored"])
    assert r.exit_code == 0, r.output
    assert _ome_pixels(tmp_path / "r/restored.tif")["PhysicalSizeZ"] == 0.5


def test_an_ome_description_that_no_longer_fits_is_not_written(tmp_path):
    """Super-resolution doubles the pages' size: the input's OME-XML would lie about it, so restored.tif has
    none and run.json says why; degraded.tif (the input's size) keeps it.  And write_stack never writes an
    OME description that does not describe its pages."""
    from restorekit.io import ome_difference, read_tiff_calibration, write_stack

    _, noisy = noisy_stack(tmp_path / "plain.tif")
    _ome_stack(tmp_path / "s.ome.tif", noisy)
    r = invoke(["run", tmp_path / "s.ome.tif", "--degrade", "downsample:2", "--prior", "tv:0.02", "--net",
                "identity", "--iters", "5", "--out", tmp_path / "o"])
    assert r.exit_code == 0, r.output
    with tifffile.TiffFile(tmp_path / "o/restored.tif") as tif:
        assert not tif.is_ome and tif.series[0].shape == (3, 48, 48)
    assert _ome_pixels(tmp_path / "o/degraded.tif")["SizeX"] == 24
    notes = json.loads((tmp_path / "o/run.json").read_text())["notes"]
    assert ("the input's OME-XML is not written into restored.tif: it describes 24x24 pixels and the result is "
            "48x48; restored.tif has no OME description") in " ".join(notes)
    cal = read_tiff_calibration(tmp_path / "s.ome.tif")
    assert ome_difference(cal, noisy) is None
    assert ome_difference(cal, noisy[:2]) == "it describes 3 planes (1 sample(s) a pixel) and the result has 2 pages"
    assert ome_difference(cal, (noisy // 257).astype(np.uint8)) == (
        "it describes uint16 samples and the result holds uint8")
    write_stack(tmp_path / "two.tif", noisy[:2], calibration=cal)
    with tifffile.TiffFile(tmp_path / "two.tif") as tif:
        assert not tif.is_ome and len(tif.pages) == 2
