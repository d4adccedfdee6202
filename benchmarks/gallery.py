"""Before/after pictures of every task, made by the real commands: docs/images/gallery/ and docs/gallery.md.

    OMP_NUM_THREADS=1 python benchmarks/gallery.py            # every task, a few minutes on one CPU thread
    python benchmarks/gallery.py --only denoise,compare       # some of them
    python benchmarks/gallery.py --work /tmp/gallery          # keep the commands' output folders there

Each task runs the ``restorekit`` command line in a subprocess (one torch thread,
``--device cpu``, few iterations, 128x128 images) exactly as printed in the
table, reads the record the command wrote, and saves small PNGs (at most 256
pixels a side) into ``docs/images/gallery/``.  Numbers are measured against a
reference wherever one exists: PSNR in dB for images, IoU for a mask.  The
table and every number also go to ``benchmarks/results/gallery.json``, which
docs/gallery.md quotes (tests/test_facts.py holds the two to each other).

Images: nothing is downloaded and nothing that may not be redistributed is
used.  The embedded test image (``restorekit/data/default.png``, what a
command uses when given no image) serves denoising, inpainting,
super-resolution, the real-noise example and the compare panel; scikit-image's
bundled photos (``chelsea``, ``coffee``, ``camera``, ``astronaut``, the
``lfw_subset`` faces) the segmentation, decomposition
and inversion examples.  The "real noise" example is *synthetic*
Poisson-Gaussian noise (peak 30 photons per unit intensity plus Gaussian read
noise of 4/255, seeded) added to the embedded image and saved as an 8-bit
PNG, then restored as a real photo is: ``restorekit run noisy.png`` with no
flags estimates the noise model from the image itself.  The cc15 real-noise
photos under ``../shared/data/real`` are not used: they may not be
redistributed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images" / "gallery"
RESULTS = ROOT / "benchmarks" / "results" / "gallery.json"
SIZE = 128
EMBEDDED = ROOT / "restorekit" / "data" / "default.png"


# -- images --------------------------------------------------------------------------------
def _read(path: Path) -> np.ndarray:
    """An image file as float64 in [0, 1], HxW or HxWxC (alpha dropped)."""
    from PIL import Image

    image = Image.open(path)
    if image.mode == "P":  # a gallery picture (palette)
        image = image.convert("RGB")
    a = np.asarray(image)
    scale = 65535.0 if a.dtype == np.uint16 else 255.0
    a = a.astype(np.float64) / scale
    return a[..., :3] if a.ndim == 3 else a


def _write(path: Path, a: np.ndarray) -> None:
    from PIL import Image

    a = np.clip(np.asarray(a, np.float64), 0, 1)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray((a * 255 + 0.5).astype(np.uint8))
    if image.mode == "RGB" and path.parent == IMAGES:  # a 256-colour palette: a noisy 256x256 panel in tens of KB, not 150
        image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    image.save(path, optimize=True)


def _photo(name: str, size: int = SIZE, gray: bool = False) -> np.ndarray:
    """A scikit-image bundled photo: centred square crop, resized, float in [0, 1]."""
    from skimage import data
    from skimage.color import rgb2gray
    from skimage.transform import resize

    a = np.asarray(getattr(data, name)(), dtype=np.float64)
    a = a / (255.0 if a.max() > 1 else 1.0)
    if a.ndim == 3:
        a = a[..., :3]
        if gray:
            a = rgb2gray(a)
    h, w = a.shape[:2]
    s = min(h, w)
    a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return np.clip(resize(a, (size, size), anti_aliasing=True), 0, 1)


def _psnr(reference: np.ndarray, test: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(reference, np.clip(test, 0, 1), data_range=1.0))


def _tile(images: list[np.ndarray], cols: int) -> np.ndarray:
    """Equal-size images (gray or RGB) on a grid, row by row."""
    rgb = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in images]
    h, w = rgb[0].shape[:2]
    rows = -(-len(rgb) // cols)
    out = np.ones((rows * h, cols * w, 3))
    for i, a in enumerate(rgb):
        r, c = divmod(i, cols)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = a
    return out


# -- the command line ----------------------------------------------------------------------
def _options(command: str) -> set[str]:
    from typer.main import get_command

    from restorekit.cli import get_app

    cmd = get_command(get_app()).commands[command]
    return {o for p in cmd.params for o in getattr(p, "opts", [])}


# The vocabulary of issue 23 (docs/glossary.md); a tree from before its renames has the old names.
RENAMED = {("compare", "--prior"): "--method", ("segment", "--reference"): "--truth"}


def _argv(args: list[str]) -> list[str]:
    """The command as printed, with a new option name mapped back where this tree lacks it."""
    command = args[0]
    have = _options(command)
    return [RENAMED.get((command, a), a) if a.startswith("--") and a not in have else a for a in args]


def _restorekit(args: list[str], work: Path) -> tuple[dict, float]:
    """Run ``restorekit ARGS --json`` in ``work`` on one thread; its JSON record and the seconds it took."""
    if "--out" in args:  # a fresh folder each time the gallery is made
        shutil.rmtree(work / args[args.index("--out") + 1], ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "restorekit.cli", *_argv(args), "--json"], cwd=work,
                       capture_output=True, text=True, env=env, timeout=900)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"restorekit {shlex.join(args)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return json.loads(r.stdout), seconds


def _priors(rec: dict) -> str:
    """The prior(s) a run used, as canonical specs ('+' between several)."""
    return " + ".join(p["spec"] for p in rec["components"]["priors"])


def _outcome(rec: dict) -> dict:
    """Where a run's image came from: the fit's last or averaged output, a solver, or its start (a safeguard)."""
    res = rec["result"]
    return {"output": res.get("output"), "iterations_run": res.get("iterations_run"),
            "safeguard": (rec.get("safeguard") or {}).get("action")}


# -- the tasks -----------------------------------------------------------------------------
def _restore_task(name: str, args: list[str], work: Path, label: str) -> dict:
    """A `run` in benchmark mode on the embedded image: degraded.png before, restored.png after."""
    rec, s = _restorekit(["run", *args, "--device", "cpu", "--out", name], work)
    out = work / name
    _write(IMAGES / f"{name}-before.png", _read(out / "degraded.png"))
    _write(IMAGES / f"{name}-after.png", _read(out / "restored.png"))
    m = rec["result"]["metrics"]
    return {"task": label, "command": "restorekit " + shlex.join(["run", *args]), "metric": "psnr",
            "before": round(rec["result"]["baseline"]["psnr"], 2) if rec["result"].get("baseline") else None,
            "after": round(m["psnr"], 2), "seconds": round(s, 1),
            "images": [f"{name}-before.png", f"{name}-after.png"],
            "prior": _priors(rec), **_outcome(rec)}


def task_denoise(work: Path) -> dict:
    return _restore_task("denoise", ["--mode", "benchmark", "--degrade", "gaussian:25"], work,
                         "Gaussian denoising (sigma 25)")


def task_inpaint(work: Path) -> dict:
    return _restore_task("inpaint", ["--mode", "benchmark", "--degrade", "bernoulli:0.5", "--time-limit", "20"],
                         work, "inpainting (half the pixels lost)")


def task_sr(work: Path) -> dict:
    row = _restore_task("sr", ["--mode", "benchmark", "--degrade", "downsample:4"], work, "4x super-resolution")
    before = _read(work / "sr" / "degraded.png")  # 32x32: shown enlarged by pixel repetition, as a viewer would
    _write(IMAGES / "sr-before.png", np.kron(before, np.ones((4, 4, 1))) if before.ndim == 3 else np.kron(before, np.ones((4, 4))))
    return row


def task_real(work: Path) -> dict:
    """Synthetic Poisson-Gaussian noise on the embedded image, restored as a real photo: no flags."""
    clean = _read(EMBEDDED)
    rng = np.random.default_rng(0)
    peak, read = 30.0, 4 / 255
    noisy = rng.poisson(clean * peak) / peak + rng.normal(0, read, clean.shape)
    _write(work / "clean.png", clean)
    _write(work / "noisy.png", noisy)
    args = ["run", "noisy.png", "--reference", "clean.png"]
    rec, s = _restorekit([*args, "--device", "cpu", "--out", "real"], work)
    before, after = _read(work / "noisy.png"), _read(work / "real" / "restored.png")
    _write(IMAGES / "real-before.png", before)
    _write(IMAGES / "real-after.png", after)
    return {"task": "real noise (synthetic Poisson-Gaussian, estimated from the image)",
            "command": "restorekit " + shlex.join(args), "metric": "psnr",
            "before": round(_psnr(clean, before), 2), "after": round(rec["result"]["metrics"]["psnr"], 2),
            "seconds": round(s, 1), "images": ["real-before.png", "real-after.png"],
            "prior": _priors(rec), **_outcome(rec)}


def task_segment(work: Path) -> dict:
    """The cat photo inside an ellipse, coffee outside; double-dip with a box hint; IoU against the mask."""
    from skimage.draw import ellipse

    mask = np.zeros((SIZE, SIZE), bool)
    mask[ellipse(64, 60, 40, 30, shape=mask.shape, rotation=0.4)] = True
    image = np.where(mask[..., None], _photo("chelsea"), _photo("coffee"))
    _write(work / "object.png", image)
    _write(work / "object-mask.png", mask.astype(float))
    ys, xs = np.nonzero(mask)
    x0, y0 = max(int(xs.min()) - 4, 0), max(int(ys.min()) - 4, 0)
    w, h = min(int(xs.max()) + 5, SIZE) - x0, min(int(ys.max()) + 5, SIZE) - y0
    args = ["segment", "object.png", "--method", "double-dip", "--hint", f"box:{x0},{y0},{w},{h}",
            "--reference", "object-mask.png", "--iters", "150"]
    rec, s = _restorekit([*args, "--out", "segment"], work)
    _write(IMAGES / "segment-before.png", image)
    _write(IMAGES / "segment-after.png", _read(work / "segment" / "overlay.png"))
    return {"task": "segmentation (double-dip, box hint)", "command": "restorekit " + shlex.join(args),
            "metric": "iou", "before": None, "after": round(rec["metrics"]["iou"], 3), "seconds": round(s, 1),
            "images": ["segment-before.png", "segment-after.png"]}


def _layers(folder: Path) -> dict[str, np.ndarray]:
    return {p.stem[len("layer-"):]: _read(p) for p in sorted(folder.glob("layer-*.png"))}


def task_transparency(work: Path) -> dict:
    """Two gray photos mixed with two sets of weights; double-dip separates them; each layer's best PSNR."""
    a, b = _photo("camera", gray=True), _photo("astronaut", gray=True)
    _write(work / "mix1.png", 0.6 * a + 0.4 * b)
    _write(work / "mix2.png", 0.35 * a + 0.65 * b)
    args = ["decompose", "mix1.png", "--task", "transparency", "--second", "mix2.png", "--iters", "300"]
    rec, s = _restorekit([*args, "--out", "transparency"], work)
    layers = list(_layers(work / "transparency").values())[:2]
    layers = [l.mean(axis=2) if l.ndim == 3 else l for l in layers]
    score = max((_psnr(a, layers[0]) + _psnr(b, layers[1])) / 2, (_psnr(a, layers[1]) + _psnr(b, layers[0])) / 2)
    before = (_psnr(a, 0.6 * a + 0.4 * b) + _psnr(b, 0.35 * a + 0.65 * b)) / 2
    _write(IMAGES / "transparency-before.png", _read(work / "mix1.png"))
    _write(IMAGES / "transparency-after.png", _tile(layers, 2))
    return {"task": "transparency separation (double-dip)", "command": "restorekit " + shlex.join(args),
            "metric": "psnr", "before": round(before, 2), "after": round(score, 2), "seconds": round(s, 1),
            "images": ["transparency-before.png", "transparency-after.png"]}


def task_watermark(work: Path) -> dict:
    """White strokes at opacity 0.4 in a box on the cat photo; double-dip with the box; PSNR in the box."""
    clean = _photo("chelsea")
    mark = np.zeros((SIZE, SIZE), bool)
    x0, y0 = 40, 52
    for dx in (0, 14, 28):  # three bars and a crossbar: a simple mark
        mark[y0:y0 + 24, x0 + dx:x0 + dx + 3] = True
    mark[y0 + 10:y0 + 13, x0:x0 + 31] = True
    marked = np.where(mark[..., None], 0.6 * clean + 0.4, clean)
    _write(work / "marked.png", marked)
    box = (x0 - 3, y0 - 3, 37, 30)
    args = ["decompose", "marked.png", "--task", "watermark", "--hint", "box:%d,%d,%d,%d" % box, "--iters", "300"]
    rec, s = _restorekit([*args, "--out", "watermark"], work)
    layers = _layers(work / "watermark")
    restored = layers.get("clean", next(iter(layers.values())))
    bx, by, bw, bh = box
    inside = (slice(by, by + bh), slice(bx, bx + bw))
    pasted = marked.copy()
    pasted[inside] = restored[inside]
    _write(IMAGES / "watermark-before.png", marked)
    _write(IMAGES / "watermark-after.png", pasted)
    return {"task": "watermark removal (double-dip, box hint)", "command": "restorekit " + shlex.join(args),
            "metric": "psnr (inside the box)", "before": round(_psnr(clean[inside], marked[inside]), 2),
            "after": round(_psnr(clean[inside], restored[inside]), 2), "seconds": round(s, 1),
            "images": ["watermark-before.png", "watermark-after.png"]}


def task_dehaze(work: Path) -> dict:
    """The coffee photo hazed by I = J t + A (1 - t), depth rising to the top; the dark channel prior."""
    clean = _photo("coffee")
    depth = np.linspace(1, 0, SIZE)[:, None] * np.ones((1, SIZE))
    t = np.exp(-1.5 * depth)[..., None]
    hazy = clean * t + np.array([0.90, 0.92, 0.95]) * (1 - t)
    _write(work / "hazy.png", hazy)
    args = ["decompose", "hazy.png", "--task", "dehaze", "--method", "dark-channel"]
    rec, s = _restorekit([*args, "--out", "dehaze"], work)
    layers = _layers(work / "dehaze")
    restored = next((v for k, v in layers.items() if k in ("scene", "dehazed", "clean")), next(iter(layers.values())))
    _write(IMAGES / "dehaze-before.png", hazy)
    _write(IMAGES / "dehaze-after.png", restored)
    return {"task": "dehazing (dark channel prior)", "command": "restorekit " + shlex.join(args),
            "metric": "psnr", "before": round(_psnr(clean, hazy), 2), "after": round(_psnr(clean, restored), 2),
            "seconds": round(s, 1), "images": ["dehaze-before.png", "dehaze-after.png"]}


def task_invert(work: Path) -> dict:
    """The image whose conv2 features in the bundled `faces` classifier match a face's, under the deep image prior."""
    from skimage import data

    face = np.asarray(data.lfw_subset()[0], np.float64)
    _write(work / "face.png", face)
    args = ["invert", "faces", "face.png", "--layer", "conv2", "--prior", "dip", "--iters", "200"]
    rec, s = _restorekit([*args, "--out", "invert"], work)
    found = [p for p in sorted((work / "invert").glob("*.png")) if p.stem not in ("invert", "curves")]
    after = _read(found[0])
    after = after.mean(axis=2) if after.ndim == 3 else after
    big = lambda a: np.kron(a, np.ones((2, 2)))  # the faces are 25x25: shown at 2x
    _write(IMAGES / "invert-before.png", big(face))
    _write(IMAGES / "invert-after.png", big(after))
    return {"task": "feature inversion (faces, conv2, deep image prior)", "command": "restorekit " + shlex.join(args),
            "metric": "psnr", "before": None, "after": round(_psnr(face, after), 2), "seconds": round(s, 1),
            "images": ["invert-before.png", "invert-after.png"]}


def task_visualize(work: Path) -> dict:
    """The image that most excites the `faces` classifier's output unit 1, under the deep image prior."""
    args = ["visualize", "faces", "--layer", "fc", "--unit", "1", "--prior", "dip", "--iters", "300"]
    rec, s = _restorekit([*args, "--out", "visualize"], work)
    found = [p for p in sorted((work / "visualize").glob("*.png")) if p.stem not in ("visualize", "curves")]
    after = _read(found[0])
    _write(IMAGES / "visualize-after.png", np.kron(after, np.ones((2, 2) if after.ndim == 2 else (2, 2, 1))))
    return {"task": "activation maximisation (faces, fc unit 1)", "command": "restorekit " + shlex.join(args),
            "metric": None, "before": None, "after": None, "seconds": round(s, 1),
            "images": ["visualize-after.png"]}


def task_compare(work: Path) -> dict:
    """Three priors on one noisy draw: the observation and their results on a 2x2 grid."""
    args = ["compare", "--mode", "benchmark", "--degrade", "gaussian:25",
            "--prior", "bm3d", "--prior", "nlm", "--prior", "tv"]
    rec, s = _restorekit([*args, "--device", "cpu", "--out", "compare"], work)
    rows = rec.get("priors") or rec.get("methods")
    name = lambda row: row.get("prior") or row.get("method")
    tiles = [_read(work / "compare" / "degraded.png")] + [_read(work / "compare" / r["folder"] / "restored.png") for r in rows]
    _write(IMAGES / "compare.png", _tile(tiles, 2))
    return {"task": "compare (" + ", ".join(name(r) for r in rows) + ")", "command": "restorekit " + shlex.join(args),
            "metric": "psnr", "before": round(rec["baseline"]["psnr"], 2),
            "after": {name(r): round(r["metrics"]["psnr"], 2) for r in rows}, "seconds": round(s, 1),
            "images": ["compare.png"], "order": ["observation"] + [name(r) for r in rows]}


PAGE = ROOT / "docs" / "gallery.md"

#: what each picture shows, for docs/gallery.md (the numbers come from the record)
NOTES = {
    "denoise": "The embedded image with Gaussian noise of sigma 25 added (`--mode benchmark`), and what `--prior auto` "
               "made of it on a CPU: BM3D and restorekit's learned denoiser, weighted by SURE.",
    "inpaint": "Half of the pixels lost at random. `--prior auto` fits a CPU-sized deep image prior started from "
               "biharmonic inpainting, here for 20 s.",
    "sr": "A 32x32 observation (shown enlarged by pixel repetition) and its 4x super-resolution; `--prior auto` is total "
          "variation on the pixels for this task on a CPU.",
    "real": "*Synthetic* Poisson-Gaussian noise (peak 30, Gaussian read noise 4/255, seeded) on the embedded image, "
            "saved as an 8-bit PNG and restored as a real photo is: no flags, the noise model estimated from the image "
            "itself ([real-data.md](real-data.md)). The real-noise photos we benchmark on (cc15) may not be "
            "redistributed, so none is shown.",
    "segment": "scikit-image's cat photo inside an ellipse, its coffee photo outside; double-dip with a box hint "
               "(the ellipse's bounding box grown by 4 pixels), scored against the ellipse.",
    "transparency": "Two gray photos (camera, astronaut) mixed as 0.6/0.4 (shown) and 0.35/0.65 (`--second`); the two "
                    "layers double-dip separates. The score is the mean PSNR of each layer against the photo it matches "
                    "(before: each mixture against its stronger photo).",
    "watermark": "Three white bars and a crossbar at opacity 0.4 on the cat photo; double-dip told only the box. The "
                 "picture pastes its clean layer into the box; PSNR inside the box.",
    "dehaze": "The coffee photo hazed by `I = J t + A (1 - t)` with the depth rising to the top (`t` from 0.22 to 1, "
              "airlight 0.90/0.92/0.95); the dark channel prior's dehazed layer.",
    "invert": "A face of scikit-image's `lfw_subset` (25x25, shown at 2x) and the image whose `conv2` features in the "
              "bundled `faces` classifier match it, searched under the deep image prior.",
    "visualize": "The image that most excites output unit 1 of the `faces` classifier, under the deep image prior "
                 "(no reference: no score).",
    "compare": "One noisy draw (sigma 25) of the embedded image and three priors on it; top left the observation, then "
               "the priors in the order of the table (best PSNR first).",
}


def _number(row: dict) -> str:
    if row["metric"] is None:
        return "no reference"
    unit = "" if row["metric"] == "iou" else " dB"
    after = row["after"]
    if isinstance(after, dict):
        after = ", ".join(f"{k} {v}{unit}" for k, v in after.items())
    else:
        after = f"{after}{unit}"
    before = f"{row['before']}{unit} -> " if row["before"] is not None else ""
    label = {"psnr": "PSNR", "iou": "IoU", "psnr (inside the box)": "PSNR inside the box"}.get(row["metric"], row["metric"])
    return f"{label}: {before}{after}"


def write_page(record: dict) -> None:
    """docs/gallery.md from the record: a picture, its command and its number for every task."""
    lines = [
        "# Gallery",
        "",
        "Before and after, for every task restorekit does. Each picture was made by the command under it, run by",
        "[`benchmarks/gallery.py`](../benchmarks/gallery.py) on one CPU thread, few iterations and",
        f"{record['size']}x{record['size']} images, with `--out TASK --json` added (and `--device cpu` for `run` and",
        "`compare`), in a folder where the script first writes the inputs a command names (`noisy.png`,",
        "`object.png`, `mix1.png`, ...: its source says how each is made). The numbers and seconds are that run's",
        "([`benchmarks/results/gallery.json`](../benchmarks/results/gallery.json), which `tests/test_facts.py`",
        "holds this page to); seconds are wall-clock on a shared 2-core machine. `python benchmarks/gallery.py`",
        "makes it all again in a few minutes.",
        "",
        "The images are restorekit's embedded test image (`restorekit/data/default.png`, what a command uses when",
        "given none) and photos bundled with scikit-image; nothing here comes from a data set that may not be",
        "redistributed. The pictures are 256-colour PNGs of at most 256 pixels a side.",
        "",
        "| task | command | score | seconds |",
        "| --- | --- | --- | --- |",
    ]
    for row in record["tasks"]:
        lines.append(f"| [{row['task']}](#{row['name']}) | `{row['command']}` | {_number(row)} | {row['seconds']} |")
    for row in record["tasks"]:
        lines += ["", f"<a id=\"{row['name']}\"></a>", f"## {row['task'][0].upper() + row['task'][1:]}", ""]
        lines.append(" ".join(f"![{row['name']} {'before' if i == 0 and len(row['images']) > 1 else 'after'}]"
                              f"(images/gallery/{image})" for i, image in enumerate(row["images"])))
        lines += ["", "```bash", row["command"], "```", "", NOTES[row["name"]], "", f"**{_number(row)}** "
                  f"in {row['seconds']} s."]
        if row["name"] == "watermark" and row["after"] < row["before"]:
            lines.append("Below the marked input: as in the benchmark ([segmentation.md](segmentation.md)), double-dip's "
                         "watermark removal is measured, not recommended; a detect-and-inpaint does better there.")
        if row.get("safeguard") == "start":
            lines.append(f"The fit ran {row['iterations_run']} iterations in its time limit on the loaded machine and "
                         "did not get past its start, so the safeguard returned the start, biharmonic inpainting "
                         "(a run note says so); with more time (`--time-limit`), or on an idle machine, the fit's own result is used once it passes that check.")
    PAGE.write_text("\n".join(lines) + "\n", encoding="utf-8")


TASKS = {
    "denoise": task_denoise, "inpaint": task_inpaint, "sr": task_sr, "real": task_real,
    "segment": task_segment, "transparency": task_transparency, "watermark": task_watermark,
    "dehaze": task_dehaze, "invert": task_invert, "visualize": task_visualize, "compare": task_compare,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated tasks (default: all): " + ", ".join(TASKS))
    ap.add_argument("--work", type=Path, default=None, help="folder for the commands' outputs (default: a temporary one)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--page-only", action="store_true", help="only rewrite docs/gallery.md from the results file")
    a = ap.parse_args(argv)
    if a.page_only:
        write_page(json.loads(a.results.read_text()))
        return 0
    names = [n for n in a.only.split(",") if n] or list(TASKS)
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        ap.error(f"unknown task(s) {unknown}; valid: {', '.join(TASKS)}")
    work = a.work or Path(tempfile.mkdtemp(prefix="restorekit-gallery-"))
    work.mkdir(parents=True, exist_ok=True)
    IMAGES.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"{'task':<12} {'metric':<22} {'before':>8} {'after':>24} {'seconds':>8}  command")
    for n in names:
        row = {"name": n, **TASKS[n](work)}
        rows.append(row)
        after = row["after"] if not isinstance(row["after"], dict) else ", ".join(f"{k} {v}" for k, v in row["after"].items())
        print(f"{n:<12} {str(row['metric']):<22} {str(row['before'] if row['before'] is not None else '-'):>8} "
              f"{str(after if after is not None else '-'):>24} {row['seconds']:>8}  {row['command']}", flush=True)
    old = json.loads(a.results.read_text()) if a.results.exists() and a.only else {"tasks": []}
    kept = [r for r in old.get("tasks", []) if r["name"] not in names]
    by_name = {r["name"]: r for r in kept + rows}
    record = {
        "script": "benchmarks/gallery.py",
        "environment": {"python": platform.python_version(), "machine": platform.machine(),
                        "threads": 1, "device": "cpu"},
        "size": SIZE,
        "tasks": [by_name[n] for n in TASKS if n in by_name],
    }
    a.results.parent.mkdir(parents=True, exist_ok=True)
    a.results.write_text(json.dumps(record, indent=1) + "\n")
    if a.results == RESULTS:
        write_page(record)
    print(f"wrote {a.results.relative_to(ROOT) if a.results.is_relative_to(ROOT) else a.results} and {IMAGES.relative_to(ROOT)}/")
    if a.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
