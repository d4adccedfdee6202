"""Presets: the Deep Image Prior authors' task configurations, by name.

Each preset fixes the degradation, priors, network, learning rate and
iteration count of one of the authors' notebooks (REFERENCE.md section 3)
and names the paper's image for it.  Options given on the command line
override the preset's.  The paper's images are not shipped: a preset run
without an image argument looks for them under a data folder (``--data``,
``$RESTOREKIT_DATA``, or ``shared/data/dip`` / ``../shared/data/dip`` from
the working directory); ``{data}`` in a spec stands for that folder.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

DEEP = "skip"  # the paper's denoising net is the default skip configuration
LIBRARY_CHANNELS = [16, 32, 64, 128, 128, 128]


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    degrade: list[str]
    prior: list[str]
    net: str | None
    iters: int
    lr: float
    image: str | None = None  # path under the data folder
    mode: str = "benchmark"
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim"])
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _library(depth: int) -> str:
    ch = LIBRARY_CHANNELS[:depth]
    return f"skip:levels={depth},channels=[{','.join(map(str, ch))}],skip=0,kernel_down=5,upsample=nearest"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("denoise", "Denoising, Gaussian sigma 25 (F16)", ["gaussian:25"],
               ["dip:reg_noise_std=1/30"], DEEP, 3000, 0.01, "denoising/F16_GT.png"),
        Preset("denoise-50", "Denoising, Gaussian sigma 50 (F16)", ["gaussian:50"],
               ["dip:reg_noise_std=1/20"], DEEP, 3000, 0.01, "denoising/F16_GT.png"),
        Preset("inpaint-text", "Text inpainting with the paper's mask (kate)", ["mask:{data}/inpainting/kate_mask.png"],
               ["dip:reg_noise_std=0.03"], "skip:skip=128,upsample=nearest", 6001, 0.01, "inpainting/kate.png"),
        Preset("inpaint-hole", "Large-hole inpainting, meshgrid input, no skips (vase)",
               ["mask:{data}/inpainting/vase_mask.png"], ["dip:meshgrid,reg_noise_std=0.03"],
               "skip:skip=0,upsample=nearest", 5001, 0.01, "inpainting/vase.png"),
        Preset("inpaint-library", "Library inpainting, skip net of depth 6 (architecture study)",
               ["mask:{data}/inpainting/library_mask.png"], ["dip:input_depth=1,reg_noise_std=0"],
               _library(6), 3001, 0.01, "inpainting/library.png"),
        Preset("inpaint-library-depth4", "Library inpainting, skip net of depth 4",
               ["mask:{data}/inpainting/library_mask.png"], ["dip:input_depth=1,reg_noise_std=0"],
               _library(4), 3001, 0.01, "inpainting/library.png"),
        Preset("inpaint-library-depth2", "Library inpainting, skip net of depth 2",
               ["mask:{data}/inpainting/library_mask.png"], ["dip:input_depth=1,reg_noise_std=0"],
               _library(2), 3001, 0.01, "inpainting/library.png"),
        Preset("inpaint-library-unet", "Library inpainting with a U-Net",
               ["mask:{data}/inpainting/library_mask.png"], ["dip:input_depth=1,reg_noise_std=0"],
               "unet:levels=4,feature_scale=8,upsample=nearest,norm=batch,pad=reflection", 3001, 0.01,
               "inpainting/library.png"),
        Preset("inpaint-library-resnet", "Library inpainting with a ResNet (lr 0.001)",
               ["mask:{data}/inpainting/library_mask.png"], ["dip:input_depth=1,reg_noise_std=0"],
               "resnet:blocks=8,channels=32", 3001, 0.001, "inpainting/library.png"),
        Preset("restore-barbara", "Restoration, 50% of pixels lost (barbara, grayscale)", ["bernoulli:0.5"],
               ["dip:reg_noise_std=0.03,backtrack_every=50"], DEEP, 11000, 0.001, "restoration/barbara.png"),
        Preset("restore-kate", "Restoration, 98% of pixels lost (kate)", ["bernoulli:0.98"],
               ["dip:reg_noise_std=0"],
               "skip:channels=[16,32,64,128,128],skip=0,downsample=avg", 1000, 0.01, "restoration/kate.png"),
        Preset("sr4", "Super-resolution x4, Lanczos2 (zebra)", ["downsample:4"],
               ["dip:reg_noise_std=0.03"], DEEP, 2000, 0.01, "sr/zebra_GT.png",
               metrics=["psnr:channel=y,border=4", "ssim:channel=y,border=4"]),
        Preset("sr8", "Super-resolution x8, Lanczos2 (zebra)", ["downsample:8"],
               ["dip:reg_noise_std=0.05"], DEEP, 4000, 0.01, "sr/zebra_GT.png",
               metrics=["psnr:channel=y,border=4", "ssim:channel=y,border=4"]),
        Preset("sr-prior-none", "Prior effect, x4 SR with no prior (identity parameterisation)",
               ["downsample:4"], ["none"], "identity", 2000, 0.01, "sr/zebra_crop.png",
               metrics=["psnr:channel=y,border=4"]),
        Preset("sr-prior-tv", "Prior effect, x4 SR with a TV prior on the pixels",
               ["downsample:4"], ["tv:0.01"], "identity", 2000, 0.01, "sr/zebra_crop.png",
               metrics=["psnr:channel=y,border=4"],
               notes="the authors' TV weight 1e-7 is on a summed TV^0.5; restorekit's TV is a mean, hence 0.01"),
        Preset("sr-prior-dip", "Prior effect, x4 SR with the deep image prior",
               ["downsample:4"], ["dip:reg_noise_std=1/30"], DEEP, 2000, 0.01, "sr/zebra_crop.png",
               metrics=["psnr:channel=y,border=4"]),
        Preset("flash", "Flash/no-flash: the flash photo is the network input, the no-flash photo the target",
               ["none"], ["dip:input=image,guide={data}/flash_no_flash/cave01_00_flash.jpg,reg_noise_std=0"],
               DEEP, 601, 0.1, "flash_no_flash/cave01_01_noflash.jpg", mode="restore", metrics=[]),
    ]
}


def get_preset(name: str) -> Preset:
    if name in PRESETS:
        return PRESETS[name]
    from .suggest import did_you_mean

    raise UsageError(f"unknown preset '{name}'{did_you_mean(name, PRESETS)} (see: restorekit list presets)")


def data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """The folder holding the paper's images, if one can be found."""
    candidates = []
    if explicit:
        p = Path(explicit)
        if not p.is_dir():
            raise UsageError(f"data folder '{p}' does not exist")
        return p
    env = os.environ.get("RESTOREKIT_DATA")
    if env:
        candidates.append(Path(env))
    candidates += [Path("shared/data/dip"), Path("../shared/data/dip")]
    return next((c for c in candidates if c.is_dir()), None)


def expand(preset: Preset, data: str | os.PathLike | None, need_image: bool) -> dict[str, Any]:
    """The preset's settings with ``{data}`` filled in, plus the image path if needed."""
    uses_data = need_image or any("{data}" in s for s in preset.degrade + preset.prior + [preset.net or ""])
    root = data_root(data) if uses_data else None
    if uses_data and root is None:
        raise UsageError(
            f"preset '{preset.name}' uses the paper's images: pass --data DIR (the DIP data folder) "
            "or set RESTOREKIT_DATA" + (", or give an image" if need_image else "")
        )

    def sub(s: str) -> str:
        return s.replace("{data}", str(root)) if root is not None else s

    out = {
        "degrade": [sub(s) for s in preset.degrade],
        "prior": [sub(s) for s in preset.prior],
        "net": sub(preset.net) if preset.net else None,
        "iters": preset.iters,
        "lr": preset.lr,
        "mode": preset.mode,
        "metrics": list(preset.metrics),
        "image": None,
    }
    if need_image and preset.image:
        img = root / preset.image
        if not img.exists():
            raise UsageError(f"preset '{preset.name}' needs '{img}', which does not exist; check --data")
        out["image"] = img
    return out
