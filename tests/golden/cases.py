"""The golden cases: fixed seed, tiny image, one per task; shared by the test and its generator.

``python -m tests.golden.cases`` (from the repository root) rewrites
``golden.npz`` and ``golden.json`` from the code as it is: do that only at a
commit whose behaviour is the reference, and say so in the commit message.
``python -m tests.golden.cases --deviation`` writes nothing: it prints how far
this machine's runs are from the stored ones, next to the tolerances below
(run it on a new kind of CPU to see how much room they leave).

The outputs are not compared bit for bit: torch's CPU kernels sum in another
order on another instruction set (AVX2, AVX-512, AMX, NEON), thread count or
library version, and the fits amplify that rounding.  Adam divides each
gradient by its own running size, so a weight whose gradient is zero but for
rounding (a convolution's bias ahead of BatchNorm, a pixel in a tie of the TV
penalty) takes steps of about ``lr`` whose sign the rounding decides; where
that reaches the output, the last iterate's loss moves by about 1e-3 within
six steps.  So :func:`compare` holds the record's structure, strings, integers,
booleans and every float the run was given (settings, component parameters)
exact, and the floats the run computed (under ``history`` and ``result``) to
a relative tolerance per kind (:data:`RTOL`); pixels may move by
:data:`PIXEL_ATOL` of full scale plus one quantisation step.

How the tolerances were chosen: the cases were run on a 2-core AMD EPYC
(AVX-512 with bf16, no AMX) under every kernel choice reachable there --
``ATEN_CPU_CAPABILITY=default|avx2|avx512``, ``ONEDNN_MAX_CPU_ISA=SSE41|AVX2``,
oneDNN off, ``MKL_CBWR=COMPATIBLE|AVX2|AVX512``, ``MKL_ENABLE_INSTRUCTIONS=SSE4_2``,
1 and 2 threads, and the lowest of them together -- and six times with every
initial weight nudged by one ulp (random signs), a stand-in for any other
rounding.  Largest relative deviation from the stored values seen, and the
tolerance (about 8-10x, more where a real change still lands far outside):

=====================  ==========  =========  ==============================
floats                 worst seen  tolerance  where the worst came from
=====================  ==========  =========  ==============================
history.loss           2.4e-3      2e-2       dip-tv, sr (last iterate)
history.psnr           7.8e-4      1e-2       dip-tv, sr (last iterate)
history.psnr_avg       1.2e-5      1e-4       dip-tv (the EMA damps it)
result.metrics         3.1e-4      3e-3       SSIM of dip-tv, sr (PSNR 4e-5)
result.baseline        3.4e-8      1e-5       the degraded input's metrics
restored pixels        4.6e-3      2.5e-2     one tv-identity pixel in a tie
=====================  ==========  =========  ==============================

(the pixel row is in fractions of full scale; every other case's pixels
stayed within 3e-4, i.e. at most one 8-bit step).  What a real change does,
measured on the same machine: a 1% larger Adam step (hidden from the record)
moves the losses by up to 2.7e-2, PSNR_avg by 5e-4, the metrics by 2.4e-2
and the eswmv case's stopping iteration; an EMA rate 0.99 -> 0.991 moves the
metrics by up to 8.7e-2; another seed moves pixels by 100+ 8-bit steps.  The
rate and the EMA in the settings and the prior's parameters are compared
exactly.  The eswmv case stops where it does with its nearest competing
variance 7% away, far beyond the 1e-6 rounding moves it, so its integers stay
exact.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
TINY = "skip:levels=2,channels=8,skip=2"

#: name -> restore() keyword arguments; the image is 24x20 (a multiple of the tiny net's stride: no padding).
#: The priors are named: the cases pin the engine, not what --prior auto chooses (tests/test_auto.py does that);
#: so is the mode (an image given defaults to restore mode; these simulate their degradation)
CASES: dict[str, dict] = {
    "denoise": dict(prior="dip", degrade="gaussian:25", net=TINY, iters=6, mode="benchmark"),
    "inpaint": dict(prior="dip", degrade="bernoulli:0.5", net=TINY, iters=6, mode="benchmark"),
    "text": dict(prior="dip", degrade="text:Hi,font_size=10", net=TINY, iters=6, mode="benchmark"),
    "box": dict(prior="dip", degrade="box:size=0.3", net=TINY, iters=6, mode="benchmark"),
    "sr": dict(prior="dip", degrade="downsample:2", net=TINY, iters=6, mode="benchmark"),
    "chain": dict(prior="dip", degrade=["downsample:2", "gaussian:10"], net=TINY, iters=6, mode="benchmark"),
    "tv-identity": dict(degrade="gaussian:25", prior="tv:0.05", net="identity", iters=6, mode="benchmark"),
    "dip-tv": dict(degrade="gaussian:25", prior=["dip", "tv:0.01"], net=TINY, iters=6, mode="benchmark"),
    "eswmv": dict(prior="dip", degrade="gaussian:25", net=TINY, iters=12, stop="eswmv:patience=3,window=3",
                  mode="benchmark"),
    "ensemble": dict(prior="dip", degrade="gaussian:25", net=TINY, iters=4, ensemble=2, mode="benchmark"),
    "restore-mode": dict(prior="dip", degrade="gaussian:25", net=TINY, iters=6, mode="restore"),
    "gray16": dict(prior="dip", degrade="poisson", net=TINY, iters=6, gray16=True, mode="benchmark"),
}

#: record keys that change from run to run (times, paths, versions, machine)
VOLATILE = {("timings",), ("environment",), ("history", "time"), ("input", "path"), ("restorekit",)}
#: keys the record gained after the reference commit (everything else must be identical)
ADDED = {("schema_version",), ("auto",)}
#: sections the record gained after the reference commit that stay null in these cases (no noise is
#: estimated, no safeguard runs): dropped only while null, so a case where one appears fails
ADDED_NULL = {("noise",), ("safeguard",)}

#: relative tolerance of the floats a run computes, by where they are in the record (see the module
#: docstring for how they were measured); a computed float the table does not name gets RTOL_OTHER
RTOL: dict[tuple[str, str], float] = {
    ("history", "loss"): 2e-2,
    ("history", "psnr"): 1e-2,
    ("history", "psnr_avg"): 1e-4,
    ("result", "metrics"): 3e-3,
    ("result", "baseline"): 1e-5,
}
RTOL_OTHER = 2e-2
#: the sections whose floats the run computed; floats anywhere else were given to it and compare exactly
COMPUTED = ("history", "result")
#: absolute slack for a computed float whose stored value is zero
ATOL = 1e-9
#: how far a restored pixel may move, as a fraction of full scale, on top of one quantisation step
PIXEL_ATOL = 2.5e-2


def image(gray16: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:20, 0:24] / 24
    chans = 1 if gray16 else 3
    img = np.stack([0.5 + 0.4 * np.sin(3 * xx + k) * np.cos(2 * yy - k) for k in range(chans)], -1)
    img = np.clip(img + 0.02 * rng.standard_normal(img.shape), 0, 1)
    if gray16:
        return (img[..., 0] * 65535).round().astype(np.uint16)
    return (img * 255).round().astype(np.uint8)


def stable(record: dict) -> dict:
    """The record without its volatile parts, through JSON (as run.json holds it)."""
    from restorekit.run.record import record_json

    data = json.loads(record_json(record))
    for path in VOLATILE | ADDED:
        node = data
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    for path in ADDED_NULL:
        node = data
        for key in path[:-1]:
            node = node.get(key, {})
        if node.get(path[-1], 0) is None:
            del node[path[-1]]
    data["members"] = [{k: v for k, v in m.items() if k != "seconds"} for m in data["result"].pop("members", [])]
    return data


def run_case(name: str, registry=None):
    """Run case ``name`` as if on a CPU with bfloat16 instructions (the reference machine had them): the
    record's notes then hold the same --precision bf16 hint on every machine; the fit itself is fp32."""
    import restorekit
    from restorekit.run import plan

    kwargs = dict(CASES[name])
    gray16 = kwargs.pop("gray16", False)
    has_bf16 = plan.cpu_has_native_bf16
    plan.cpu_has_native_bf16 = lambda: True
    try:
        return restorekit.restore(image(gray16), seed=3, registry=registry, **kwargs)
    finally:
        plan.cpu_has_native_bf16 = has_bf16


def pixel_tolerance(dtype: np.dtype) -> float:
    """How far a pixel of ``dtype`` may move: PIXEL_ATOL of full scale plus one quantisation step."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return float(int(PIXEL_ATOL * np.iinfo(dtype).max) + 1)
    return PIXEL_ATOL


def pixel_deviation(got: np.ndarray, expected: np.ndarray) -> float:
    """The largest difference between two images' pixels, in the units of their dtype."""
    return float(np.abs(got.astype(np.float64) - expected.astype(np.float64)).max(initial=0.0))


def _walk(got, expected, path: tuple, floats: list, exact: list) -> None:
    """Collect (path, got, expected) for the computed floats in ``floats`` and a line for each other
    difference (keys, lengths, types, values) in ``exact``."""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or got.keys() != expected.keys():
            extra = sorted(set(got) - set(expected)) if isinstance(got, dict) else got
            missing = sorted(set(expected) - set(got)) if isinstance(got, dict) else None
            exact.append(f"{'.'.join(map(str, path)) or 'record'}: keys differ (new {extra}, missing {missing})")
            return
        for key in expected:
            _walk(got[key], expected[key], path + (key,), floats, exact)
    elif isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            exact.append(f"{'.'.join(map(str, path))}: {got!r} != {expected!r}")
            return
        for i, (g, e) in enumerate(zip(got, expected)):
            _walk(g, e, path + (i,), floats, exact)
    elif type(got) is float and type(expected) is float and path[0] in COMPUTED:
        floats.append((path, got, expected))
    elif type(got) is not type(expected) or got != expected:
        exact.append(f"{'.'.join(map(str, path))}: {got!r} != {expected!r}")


def rtol_for(path: tuple) -> float:
    """The relative tolerance of the computed float at ``path``."""
    return RTOL.get(tuple(path[:2]), RTOL_OTHER)


def deviations(got: dict, expected: dict) -> tuple[dict[tuple, float], list[str]]:
    """The largest relative deviation of the computed floats per RTOL key, and the other differences."""
    floats: list = []
    exact: list[str] = []
    _walk(got, expected, (), floats, exact)
    worst: dict[tuple, float] = {}
    for path, g, e in floats:
        key = tuple(path[:2]) if tuple(path[:2]) in RTOL else ("other",)
        rel = abs(g - e) / abs(e) if e else abs(g)
        worst[key] = max(worst.get(key, 0.0), rel)
    return worst, exact


def compare(got: dict, expected: dict) -> list[str]:
    """What differs between two stable records beyond the tolerances (nothing: an empty list)."""
    floats: list = []
    problems: list[str] = []
    _walk(got, expected, (), floats, problems)
    for path, g, e in floats:
        if not math.isclose(g, e, rel_tol=rtol_for(path), abs_tol=ATOL):
            problems.append(f"{'.'.join(map(str, path))}: {g!r} != {e!r} (relative tolerance {rtol_for(path)})")
    return problems


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.golden.cases", description=__doc__.split("\n")[0])
    parser.add_argument("--deviation", action="store_true",
                        help="write nothing; print how far this machine's runs are from the stored outputs")
    args = parser.parse_args(argv)
    if args.deviation:
        print_deviation()
        return
    arrays, records = {}, {}
    for name in CASES:
        r = run_case(name)
        arrays[name] = r.image
        records[name] = stable(r.record)
    np.savez_compressed(HERE / "golden.npz", **arrays)
    (HERE / "golden.json").write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(arrays)} cases")


def print_deviation() -> None:
    """Each case's deviation from the stored outputs (pixels in fractions of full scale), and the worst."""
    stored = np.load(HERE / "golden.npz")
    records = json.loads((HERE / "golden.json").read_text())
    worst: dict[tuple, float] = {}
    for name in sorted(CASES):
        r = run_case(name)
        expected = stored[name]
        scale = np.iinfo(expected.dtype).max if expected.dtype.kind in "ui" else 1.0
        px = pixel_deviation(r.image, expected) / scale
        rel, exact = deviations(stable(r.record), records[name])
        rel[("pixels",)] = px
        for key, v in rel.items():
            worst[key] = max(worst.get(key, 0.0), v)
        shown = "  ".join(f"{'.'.join(k)} {v:.1e}" for k, v in sorted(rel.items()))
        print(f"{name:13s} {shown}" + "".join(f"\n    differs: {line}" for line in exact))
    limits = {**RTOL, ("other",): RTOL_OTHER, ("pixels",): PIXEL_ATOL}
    print("worst         " + "  ".join(f"{'.'.join(k)} {v:.1e} (tolerance {limits[k]:.1e})"
                                       for k, v in sorted(worst.items())))


if __name__ == "__main__":
    main()
