"""The golden cases: fixed seed, tiny image, one per task; shared by the test and its generator.

``python -m tests.golden.cases`` (from the repository root) rewrites
``golden.npz`` and ``golden.json`` from the code as it is: do that only at a
commit whose behaviour is the reference, and say so in the commit message.
Outputs are compared bit for bit; torch's CPU kernels can round differently
on another instruction set, so a failure on a different CPU model says
"regenerate at the reference commit on this machine", not "behaviour changed".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
TINY = "skip:levels=2,channels=8,skip=2"

#: name -> restore() keyword arguments; the image is 24x20 (a multiple of the tiny net's stride: no padding).
#: The priors are named: the cases pin the engine, not what --prior auto chooses (tests/test_auto.py does that)
CASES: dict[str, dict] = {
    "denoise": dict(prior="dip", degrade="gaussian:25", net=TINY, iters=6),
    "inpaint": dict(prior="dip", degrade="bernoulli:0.5", net=TINY, iters=6),
    "text": dict(prior="dip", degrade="text:Hi,font_size=10", net=TINY, iters=6),
    "box": dict(prior="dip", degrade="box:size=0.3", net=TINY, iters=6),
    "sr": dict(prior="dip", degrade="downsample:2", net=TINY, iters=6),
    "chain": dict(prior="dip", degrade=["downsample:2", "gaussian:10"], net=TINY, iters=6),
    "tv-identity": dict(degrade="gaussian:25", prior="tv:0.05", net="identity", iters=6),
    "dip-tv": dict(degrade="gaussian:25", prior=["dip", "tv:0.01"], net=TINY, iters=6),
    "eswmv": dict(prior="dip", degrade="gaussian:25", net=TINY, iters=12, stop="eswmv:patience=3,window=3"),
    "ensemble": dict(prior="dip", degrade="gaussian:25", net=TINY, iters=4, ensemble=2),
    "restore-mode": dict(prior="dip", degrade="gaussian:25", net=TINY, iters=6, mode="restore"),
    "gray16": dict(prior="dip", degrade="poisson", net=TINY, iters=6, gray16=True),
}

#: record keys that change from run to run (times, paths, versions, machine)
VOLATILE = {("timings",), ("environment",), ("history", "time"), ("input", "path"), ("restorekit",)}
#: keys the record gained after the reference commit (everything else must be identical)
ADDED = {("schema_version",), ("auto",)}


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
    data["members"] = [{k: v for k, v in m.items() if k != "seconds"} for m in data["result"].pop("members", [])]
    return data


def run_case(name: str, registry=None):
    import restorekit

    kwargs = dict(CASES[name])
    gray16 = kwargs.pop("gray16", False)
    return restorekit.restore(image(gray16), seed=3, registry=registry, **kwargs)


def main() -> None:
    arrays, records = {}, {}
    for name in CASES:
        r = run_case(name)
        arrays[name] = r.image
        records[name] = stable(r.record)
    np.savez_compressed(HERE / "golden.npz", **arrays)
    (HERE / "golden.json").write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(arrays)} cases")


if __name__ == "__main__":
    main()
