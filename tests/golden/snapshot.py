"""A bit-exact snapshot of what every command writes, for refactorings that must change nothing.

The golden runs (tests/golden/cases.py) hold the run pipeline to tolerances
that cover another CPU's rounding; a refactoring on one machine should leave
*everything* bit-identical, and this checks that across commands: ~15 small
runs (run with several priors and stopping rules, batch --stack, segment,
decompose, invert, visualize, train) at one torch thread on fixed inputs.
Pixels and weights are hashed exactly; records are compared field by field,
without times, paths and versions.

    python -m tests.golden.snapshot record          # at the commit before the change
    python -m tests.golden.snapshot check           # after it: IDENTICAL, or the differences (exit 1)
    python -m tests.golden.snapshot check seg_dd    # only these cases (names: CMDS below)

``SNAPSHOT_REF`` (default: restorekit-snapshot.json in the system's temporary
folder) is where the reference goes, ``SNAPWORK`` the scratch folder; the
reference is this machine's and is never committed.  Issue 21's refactoring
(the session/, fit/, core/ packages) was checked with it: IDENTICAL.
"""
import hashlib, json, os, subprocess, sys, shutil, pathlib, re, tempfile
import numpy as np
os.environ["OMP_NUM_THREADS"] = "1"; os.environ["MKL_NUM_THREADS"] = "1"
os.environ["RESTOREKIT_THREADS"] = "1"
W = pathlib.Path(os.environ.get("SNAPWORK", pathlib.Path(tempfile.gettempdir()) / "restorekit-snapwork"))
REF = pathlib.Path(os.environ.get("SNAPSHOT_REF", pathlib.Path(tempfile.gettempdir()) / "restorekit-snapshot.json"))
TINY = ["--net", "skip:levels=2,channels=8,skip=2"]
DD = "double-dip:iters=40,warmup=20,channels=4,levels=2"

def inputs():
    import imageio.v3 as iio
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:32, :32]
    img = (0.3 + 0.4 * ((x - 16) ** 2 + (y - 14) ** 2 < 80)).astype(float)
    img = np.clip(img + 0.05 * rng.standard_normal(img.shape), 0, 1)
    iio.imwrite(W / "comp.png", np.round(img * 255).astype(np.uint8))
    col = np.clip(np.stack([img, 1 - img, 0.5 * img + 0.2], -1) + 0.03 * rng.standard_normal((32, 32, 3)), 0, 1)
    iio.imwrite(W / "col.png", np.round(col * 255).astype(np.uint8))
    col2 = np.clip(col[::-1] * 0.8 + 0.1, 0, 1)
    iio.imwrite(W / "col2.png", np.round(col2 * 255).astype(np.uint8))
    (W / "bin").mkdir()
    for i in range(3):
        iio.imwrite(W / "bin" / f"im{i}.png", np.round(np.roll(col, 3 * i, 0) * 255).astype(np.uint8))
    face = np.round(np.clip(rng.random((25, 25)), 0, 1) * 255).astype(np.uint8)
    iio.imwrite(W / "face.png", face)
    (W / "train").mkdir()
    for i in range(3):
        iio.imwrite(W / "train" / f"t{i}.png", np.round(np.roll(col, 5 * i, 1) * 255).astype(np.uint8))

CMDS = {
 "run_dip": ["run", "col.png", "--mode", "benchmark", "--degrade", "gaussian:25", "--prior", "dip", *TINY, "--iters", "20", "--out", "o_run"],
 "run_eswmv": ["run", "col.png", "--mode", "benchmark", "--degrade", "gaussian:25", "--prior", "dip", *TINY, "--iters", "30", "--stop", "eswmv", "--out", "o_es"],
 "run_noise": ["run", "col.png", "--out", "o_runnoise"],
 "run_ens": ["run", "col.png", "--mode", "benchmark", "--degrade", "bernoulli:0.5", "--prior", "dip", *TINY, "--iters", "10", "--out", "o_ens", "--ensemble", "2"],
 "batch_stack": ["batch", "bin", "o_batch", "--mode", "benchmark", "--degrade", "gaussian:25", "--prior", "dip", *TINY, "--iters", "15", "--stack", "3"],
 "seg_dd": ["segment", "comp.png", "--method", DD, "--out", "o_segdd"],
 "seg_clu": ["segment", "comp.png", "--method", "clustering:iters=20", "--out", "o_segclu"],
 "dec_transp": ["decompose", "col.png", "--task", "transparency", "--second", "col2.png", "--iters", "6", "--out", "o_tr"],
 "dec_haze": ["decompose", "col.png", "--task", "dehaze", "--method", "double-dip", "--iters", "6", "--out", "o_haze"],
 "dec_wm": ["decompose", "col.png", "--task", "watermark", "--hint", "box:4,4,10,10", "--iters", "6", "--out", "o_wm"],
 "invert": ["invert", "faces", "face.png", "--layer", "conv1", "--iters", "15", *TINY, "--out", "o_inv"],
 "invert_none": ["invert", "faces", "face.png", "--layer", "relu1", "--iters", "8", "--prior", "none", "--out", "o_inv2"],
 "visualize": ["visualize", "faces", "--layer", "fc", "--unit", "1", "--iters", "15", *TINY, "--out", "o_vis"],
 "train": ["train", "train", "--out", "o_train", "--steps", "4", "--batch", "2", "--patch", "32", "--steps-per-epoch", "2", "--net", "resunet:8"],
 "train_faces": ["train", "--dataset", "faces", "--batch", "8", "--steps-per-epoch", "3", "--precision", "fp32", "--steps", "6", "--out", "o_faces"],
}
DROP = re.compile(r"(second|_s$|timings|time|date|elapsed|started|finished|host|pid|path|dir|cwd|version|duration|when|clock|speed|per_s|rate_s|eta|created|machine|cpu|threads|torch|python|platform|command|argv|out$|written|files)", re.I)

def clean(o):
    if isinstance(o, dict):
        return {k: clean(v) for k, v in sorted(o.items()) if not DROP.search(k)}
    if isinstance(o, list):
        return [clean(v) for v in o]
    if isinstance(o, str) and ("/tmp/" in o or re.search(r"\d\d:\d\d", o)):
        return "<str>"
    return o

def digest(p):
    if p.suffix == ".json":
        try:
            return clean(json.loads(p.read_text()))
        except Exception:
            return "unparsable"
    if p.suffix in (".png", ".tif", ".tiff", ".npy", ".npz", ".safetensors", ".pt"):
        if p.suffix in (".png", ".tif", ".tiff"):
            import imageio.v3 as iio
            try:
                a = iio.imread(p)
                return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]
            except Exception:
                pass
        if p.suffix == ".safetensors":
            from safetensors.numpy import load_file
            d = load_file(p)
            return {k: hashlib.sha256(v.tobytes()).hexdigest()[:16] for k, v in sorted(d.items())}
        return hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    return None

def run(only=None):
    if W.exists(): shutil.rmtree(W)
    W.mkdir(); inputs()
    out = {}
    exe = shutil.which("restorekit")
    for name, args in CMDS.items():
        if only and name not in only: continue
        r = subprocess.run([exe, *args], cwd=W, capture_output=True, text=True)
        res = {"rc": r.returncode}
        if r.returncode:
            res["err"] = r.stderr[-400:]
        d = W / [a for a in args if a.startswith("o_")][0]
        files = {}
        if d.exists():
            for p in sorted(d.rglob("*")):
                if p.is_file() and p.name not in ("batch.lock",):
                    g = digest(p)
                    if g is not None: files[str(p.relative_to(d))] = g
        res["files"] = files
        out[name] = res
        print(name, r.returncode, len(files), flush=True)
    return out

def diff(a, b, path=""):
    if type(a) != type(b): return [f"{path}: {str(a)[:80]} != {str(b)[:80]}"]
    if isinstance(a, dict):
        d = []
        for k in sorted(set(a) | set(b)):
            if k not in a: d.append(f"{path}/{k}: only new")
            elif k not in b: d.append(f"{path}/{k}: only ref")
            else: d += diff(a[k], b[k], f"{path}/{k}")
        return d
    if isinstance(a, list):
        if len(a) != len(b): return [f"{path}: len {len(a)} != {len(b)}"]
        return sum((diff(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))), [])
    return [] if a == b else [f"{path}: {str(a)[:80]} != {str(b)[:80]}"]

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("record", "check"):
        sys.exit("usage: python -m tests.golden.snapshot record|check [CASE ...]")
    mode = sys.argv[1]; only = sys.argv[2:] or None
    if mode == "check" and not REF.is_file():
        sys.exit(f"no reference at {REF}: run 'record' at the commit before the change first (or set SNAPSHOT_REF)")
    res = run(only)
    if mode == "record":
        REF.write_text(json.dumps(res, indent=1, sort_keys=True)); print("recorded")
    else:
        ref = json.loads(REF.read_text())
        if only: ref = {k: v for k, v in ref.items() if k in only}
        d = diff(ref, res)
        for line in d[:60]: print(line)
        print("IDENTICAL" if not d else f"{len(d)} DIFFERENCES"); sys.exit(1 if d else 0)
