"""The named benchmark protocols that ``benchmarks/run.py`` runs.

A protocol is a list of tasks; a task is one degradation on one image set
with one DIP configuration, scored by every method that applies to it.
Settings of the ``paper-*`` protocols follow REFERENCE.md sections 3-4; the
``cpu`` protocol is sized to finish in about 30 minutes on a 2-core CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: every method the harness knows, in table-column order
METHODS = (
    "degraded",  # the observation itself (denoising, inpainting)
    "bicubic",  # the observation upsampled (super-resolution)
    "tv",
    "nlm",
    "nlm-est",
    "wavelet",
    "biharmonic",
    "restorekit",  # restorekit.restore() at a fixed number of iterations
    "reference",  # benchmarks/reference_loop.py, final iterate
    "reference-ema",  # the same run's EMA of outputs
    "reference-own",  # the reference loop with unrelated seeds (seed-to-seed spread)
    "restorekit+auto",  # restorekit.restore(stop="eswmv") with the EMA
    "restorekit-bf16",  # "restorekit" with precision="bf16"
    "restorekit+auto-bf16",  # "restorekit+auto" with precision="bf16"
    "restorekit-ens2",  # "restorekit" averaging 2 fits (ensemble=2)
    "restorekit+tv",  # "restorekit" with a TV penalty beside dip (TV_PENALTY)
    "restorekit-sure",  # "restorekit" fitting SURE with the observation as input (denoising)
    "reference-cosine",  # "reference" with a cosine learning-rate decay
)

#: the TV penalty of the restorekit+tv method (weight of the mean TV against the mean squared error)
TV_PENALTY = "tv:0.01"

#: which task kinds each method applies to
APPLIES = {
    "degraded": {"denoise", "inpaint"},
    "bicubic": {"sr"},
    "tv": {"denoise"},
    "nlm": {"denoise"},
    "nlm-est": {"denoise"},
    "wavelet": {"denoise"},
    "biharmonic": {"inpaint"},
}

DENOISE9 = ["f16", "baboon", "house", "kodim01", "kodim02", "kodim03", "kodim12", "lena", "peppers"]
INPAINT11 = [
    "barbara", "boat", "house", "lena", "peppers", "cameraman", "couple", "fingerprint", "hill", "man", "montage",
]
SET5 = ["baby", "bird", "butterfly", "head", "woman"]
SET14 = [
    "baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers", "foreman", "lenna", "man",
    "monarch", "pepper", "ppt3", "zebra",
]

FULL_METRICS = (("psnr", "psnr"), ("ssim", "ssim"))
Y_METRICS = (("psnr", "psnr:channel=y,border=4"), ("ssim", "ssim:channel=y,border=4"))


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # denoise | inpaint | sr
    level: float  # sigma (0-255) | fraction lost | factor
    dataset: str  # folder under data/bench
    images: tuple[str, ...]
    net: str  # restorekit generator spec
    iters: int
    reg_noise: float
    lr: float = 0.01
    input_depth: int = 32
    #: EMA of restorekit's fixed-iteration run (0: report the final iterate)
    ema: float = 0.0
    backtrack: float = 5.0  # dB, 0 = off
    #: when the reference loop checks for backtracking: "except100" (denoising notebook) or every N
    backtrack_check: str | int = "except100"
    crop: int | None = None  # centre crop side
    #: restorekit+auto's rule; "auto": what ``restorekit run`` without --iters picks for this
    #: degradation (ES-WMV, or none when the forward model adds no noise)
    auto_stop: str = "auto"
    auto_cap: int | None = None  # iteration cap of restorekit+auto (None: 2 x iters)
    #: give restorekit+auto the reference loop's fitting time as its time limit (needs "reference")
    auto_equal_time: bool = False
    metrics: tuple[tuple[str, str], ...] = FULL_METRICS
    note: str = ""
    #: published DIP PSNR to print beside the results: ((image, dB), ...) and ("mean", dB)
    published: tuple[tuple[str, float], ...] = ()

    @property
    def degrade(self) -> str:
        if self.kind == "denoise":
            return f"gaussian:{self.level:g}"
        if self.kind == "inpaint":
            return f"bernoulli:{self.level:g}"
        return f"downsample:factor={int(self.level)},kernel=lanczos2"

    def prior(self, ema: float) -> str:
        every = 0 if self.backtrack_check == "except100" else int(self.backtrack_check)
        return (
            f"dip:input=noise,input_depth={self.input_depth},reg_noise_std={self.reg_noise!r},"
            f"ema={ema:g},backtrack={self.backtrack:g},backtrack_every={every}"
        )

    @property
    def cap(self) -> int:
        return self.auto_cap if self.auto_cap is not None else 2 * self.iters

    def describe(self) -> str:
        what = {
            "denoise": f"Gaussian noise sigma {self.level:g}",
            "inpaint": f"Bernoulli, {self.level:.0%} of pixels lost",
            "sr": f"super-resolution x{int(self.level)} (Lanczos2)",
        }[self.kind]
        crop = f", centre crops {self.crop}x{self.crop}" if self.crop else ""
        return (
            f"{what}; {self.dataset}{crop} ({len(self.images)} images); net {self.net}; "
            f"{self.iters} iters, lr {self.lr:g}, reg_noise {self.reg_noise:.4g}, input noise {self.input_depth}"
        )


@dataclass(frozen=True)
class Protocol:
    name: str
    summary: str
    tasks: tuple[Task, ...]
    methods: tuple[str, ...]
    gpu: bool = False  # meant for a GPU (runs on a CPU only for smoke tests)
    notes: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------
# paper protocols (GPU)
# ---------------------------------------------------------------------------
PAPER_METHODS_DENOISE = ("degraded", "tv", "nlm", "nlm-est", "wavelet", "restorekit", "restorekit+auto")


#: REFERENCE.md section 4 (DIP, recomputed from the authors' images; the mean includes hill, not house)
PUBLISHED_DENOISE = {
    25: (("f16", 33.69), ("baboon", 24.51), ("kodim01", 28.44), ("kodim02", 32.71), ("kodim03", 33.79),
         ("kodim12", 32.68), ("lena", 32.56), ("peppers", 31.15), ("mean", 31.29)),
    50: (("mean", 27.69),),
}
#: paper Table 1 (DIP column)
PUBLISHED_INPAINT = (
    ("barbara", 32.22), ("boat", 33.06), ("house", 39.16), ("lena", 36.16), ("peppers", 33.05), ("cameraman", 29.8),
    ("couple", 32.52), ("fingerprint", 32.84), ("hill", 32.77), ("man", 32.20), ("montage", 34.54), ("mean", 33.48),
)
PUBLISHED_SR = {("set5", 4): 29.90, ("set14", 4): 27.01, ("set5", 8): 25.89, ("set14", 8): 24.15}


def _paper_denoise(sigma: int, reg: float) -> Protocol:
    t = Task(
        published=PUBLISHED_DENOISE[sigma],
        name=f"denoise{sigma}", kind="denoise", level=sigma, dataset="denoise9", images=tuple(DENOISE9),
        net="skip", iters=3000, reg_noise=reg, ema=0.99, backtrack=5.0, backtrack_check="except100",
        note="the denoising notebook: EMA 0.99 reported, backtracking 5 dB",
    )
    return Protocol(
        name=f"paper-denoise{sigma}",
        summary=f"DIP paper denoising, sigma {sigma}, denoise9 full size, 3000 iters + EMA (GPU)",
        tasks=(t,), methods=PAPER_METHODS_DENOISE, gpu=True,
    )


def _paper_inpaint(lr: float, iters: int, suffix: str) -> Protocol:
    t = Task(
        published=PUBLISHED_INPAINT,
        name="inpaint50", kind="inpaint", level=0.5, dataset="inpaint11", images=tuple(INPAINT11),
        net="skip", iters=iters, reg_noise=0.03, lr=lr, ema=0.0, backtrack=5.0, backtrack_check=50,
        note="the restoration notebook's barbara row: skip 128x5, s4; final iterate (no EMA); backtracking every 50",
    )
    return Protocol(
        name=f"paper-inpaint50{suffix}",
        summary=f"DIP paper Table 1 inpainting, 50% Bernoulli, inpaint11, lr {lr:g}, {iters} iters (GPU)",
        tasks=(t,), methods=("degraded", "biharmonic", "restorekit", "restorekit+auto"), gpu=True,
    )


def _paper_sr(factor: int, iters: int, reg: float) -> Protocol:
    common = {
        "kind": "sr", "level": factor, "net": "skip", "iters": iters, "reg_noise": reg, "ema": 0.0,
        "backtrack": 0.0, "metrics": Y_METRICS,
        "note": "the SR notebook: final iterate, no backtracking; Y channel, 4 px border",
    }
    return Protocol(
        name=f"paper-sr{factor}",
        summary=f"DIP paper super-resolution x{factor}, Set5 and Set14, {iters} iters, Y channel (GPU)",
        tasks=(
            Task(name=f"sr{factor}-set5", dataset="set5", images=tuple(SET5),
                 published=(("mean", PUBLISHED_SR[("set5", factor)]),), **common),
            Task(name=f"sr{factor}-set14", dataset="set14", images=tuple(SET14),
                 published=(("mean", PUBLISHED_SR[("set14", factor)]),), **common),
        ),
        methods=("bicubic", "restorekit", "restorekit+auto"), gpu=True,
        notes=(f"ground truths are cropped to a multiple of {factor} from the top-left",),
    )


# ---------------------------------------------------------------------------
# cpu protocol
# ---------------------------------------------------------------------------
CPU_NET = "skip:channels=64"
CPU_ITERS = 800
CPU_METHODS = (
    "degraded", "bicubic", "tv", "nlm", "nlm-est", "wavelet", "biharmonic",
    "restorekit", "restorekit-bf16", "reference", "reference-ema", "restorekit+auto", "restorekit+auto-bf16",
)
CPU_TASKS = (
    Task(
        name="denoise25", kind="denoise", level=25, dataset="denoise9", images=("f16", "baboon", "house", "kodim03"),
        net=CPU_NET, iters=CPU_ITERS, reg_noise=1 / 30, crop=128, backtrack=5.0, backtrack_check="except100",
        auto_equal_time=True,
    ),
    Task(
        name="inpaint50", kind="inpaint", level=0.5, dataset="inpaint11", images=("barbara", "boat", "cameraman"),
        net=CPU_NET, iters=CPU_ITERS, reg_noise=0.03, crop=128, backtrack=5.0, backtrack_check=50,
        auto_equal_time=True,
    ),
    Task(
        name="sr4", kind="sr", level=4, dataset="set5", images=("baby", "butterfly"),
        net=CPU_NET, iters=CPU_ITERS, reg_noise=0.03, crop=128, backtrack=0.0, metrics=Y_METRICS,
        auto_equal_time=True,
    ),
)

PROTOCOLS: dict[str, Protocol] = {}


def _add(p: Protocol) -> None:
    PROTOCOLS[p.name] = p


_add(Protocol(
    name="cpu",
    summary="restorekit vs a plain reference loop vs classical baselines on 128x128 crops (~30 min, 2-core CPU)",
    tasks=CPU_TASKS, methods=CPU_METHODS,
    notes=((
        "restorekit: fixed iterations, final iterate (prior dip:ema=0); reference: benchmarks/reference_loop.py "
        "with matched random draws, final iterate and EMA; restorekit+auto: the rule --stop auto picks (eswmv for "
        "denoising, none for the noise-free inpainting and SR) with EMA 0.99, cap 2 x iters "
        "and the reference loop's fitting time as time limit (equal time); -bf16: the same in bfloat16"
    ),),
))
_add(Protocol(
    name="cpu-options",
    summary="what ensembles, DIP+TV, bf16 and a cosine LR decay buy at equal iterations (1 image per task, ~20 min)",
    tasks=tuple(replace(t, images=t.images[:1]) for t in CPU_TASKS),
    methods=("restorekit", "restorekit-bf16", "restorekit-ens2", "restorekit+tv", "reference", "reference-cosine"),
    notes=((
        "each option against the same loop without it, at the cpu protocol's 800 iterations, final iterates: "
        f"restorekit-ens2 (mean of 2 fits), restorekit+tv ({TV_PENALTY} beside dip), restorekit-bf16, "
        "reference-cosine (the reference loop with the learning rate decayed to 0 along a half cosine)"
    ),),
))
_add(Protocol(
    name="cpu-sure",
    summary="DIP fitted to SURE (known sigma, observation as input) vs plain DIP on the cpu denoising crops (~10 min)",
    tasks=(CPU_TASKS[0],),
    methods=("degraded", "restorekit", "restorekit-sure"),
    notes=("both final iterates at 800 iterations; restorekit-sure: prior dip:input=observation,sure=true "
           "(two forward passes a step); compare with the cpu protocol's EMA and auto columns on the same images",),
))
_add(Protocol(
    name="cpu-noise-free",
    summary="noise-free problems (inpainting, SR): --stop auto (no rule) vs forced ES-WMV, cap 1600 (~25 min)",
    tasks=tuple(replace(t, auto_equal_time=False) for t in CPU_TASKS if t.kind != "denoise"),
    methods=("reference", "restorekit+auto", "restorekit+eswmv"),
    notes=("restorekit+auto: what --stop auto does for a noise-free forward model (no rule: the cap, 2 x iters) "
           "with EMA 0.99; restorekit+eswmv: the same with ES-WMV (patience 500) forced; no time limit",),
))
_add(Protocol(
    name="smoke",
    summary="the cpu protocol on 1 image per task, 20 iterations: checks the harness in about a minute",
    tasks=tuple(replace(t, images=t.images[:1], iters=20) for t in CPU_TASKS),
    methods=CPU_METHODS + ("restorekit-ens2", "restorekit+tv", "restorekit-sure", "reference-cosine"),
))
_add(_paper_denoise(25, 1 / 30))
_add(_paper_denoise(50, 1 / 20))
_add(_paper_inpaint(0.01, 5000, ""))
_add(_paper_inpaint(0.001, 11000, "-exact"))
_add(_paper_sr(4, 2000, 0.03))
_add(_paper_sr(8, 4000, 0.05))


def get(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, PROTOCOLS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SystemExit(f"error: unknown protocol {name!r}{hint}; valid: {', '.join(PROTOCOLS)}") from None
