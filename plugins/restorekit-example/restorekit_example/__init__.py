"""restorekit-example: the smallest complete restorekit plugin.

Copy this package to start your own.  It shows every part a plugin has:

* a **degradation** (``jpeg``): a forward model, with a parameter schema;
* a **metric** (``noise-estimate``): a score, here a no-reference one;
* a **command** (``restorekit example-info``): the command-line hook;
* the **packaging** (``pyproject.toml``): one entry point in the
  ``restorekit`` group names this module;
* the **tests** (``tests/test_example.py``): restorekit's own contract
  checks, run from the plugin's test suite.

A plugin is just a module with functions marked ``@hookimpl`` whose names
are restorekit's hook names (``docs/plugins/hooks.md`` lists them).  When
restorekit starts it imports the module named by the entry point, calls
each hook once, and from then on ``jpeg`` and ``noise-estimate`` are
components like the built-in ones: ``restorekit list`` shows them,
``restorekit run --degrade jpeg:10 --metric noise-estimate`` uses them and
``run.json`` records that plugin ``example`` 0.1.0 provided them.

Keep the top of a plugin module light: ``restorekit list`` imports it, so
heavy libraries (torch, scipy, ...) are imported inside the methods that
need them.  Here numpy and pydantic (both already loaded by restorekit) are
the only imports; Pillow is imported where JPEG is encoded.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

# Everything a plugin needs is public API of the top-level package:
#   hookimpl     marks the hook implementations below
#   Degradation, Metric (and Prior, Generator)   the base classes
#   Params       the base of every parameter schema (unknown keys are errors)
#   UsageError   an error whose message the CLI prints as one line (exit 2)
from restorekit import Degradation, Metric, Params, UsageError, hookimpl

__version__ = "0.1.0"


# ---------------------------------------------------------------------------
# A degradation: JPEG compression
# ---------------------------------------------------------------------------
class Jpeg(Degradation):
    """JPEG compression artefacts at a given quality.

    A restorekit degradation describes ``y = noise(A(x))``, split in two:

    * ``forward(x)``, the deterministic operator ``A`` on a torch tensor.
      The restoration loss differentiates through it, so it must be
      differentiable.
    * ``corrupt(y, rng)``, what is added on top of ``A(x)`` when a clean
      image is degraded on purpose (``restorekit run`` in benchmark mode).
      It works on NumPy arrays and draws any randomness from ``rng``.

    JPEG does not fit the differentiable part: its quantisation step is
    piecewise constant, so its gradient is zero almost everywhere and an
    optimiser fitting ``JPEG(x)`` to the observation would never move.  So
    the forward operator is the identity (inherited from ``Degradation``)
    and the whole JPEG round trip lives in ``corrupt()``: the restored image
    is fitted to the decoded JPEG, and the prior (``dip``, ``tv``) removes
    the blocking and ringing, as it removes any other noise.
    """

    # The name users type (--degrade jpeg:10): lowercase letters, digits, '-'.
    name = "jpeg"
    # One line, shown by `restorekit list`.
    summary = "JPEG compression artefacts (Pillow) at the given quality; the operator is the identity."
    # The parameter that may be given without its key: jpeg:10 == jpeg:quality=10.
    primary = "quality"

    # The parameter schema: a pydantic model derived from restorekit.Params.
    # Types, defaults, ranges and descriptions written here are all there
    # is: restorekit validates specs against them (with one-line errors
    # naming the parameter) and `restorekit list jpeg`, `--json` and the docs
    # render them.  Reach the values as self.params.quality.
    class Params(Params):
        quality: int = Field(10, ge=1, le=100, description="JPEG quality: 1 (worst) to 100 (best)")
        subsampling: Literal["4:4:4", "4:2:2", "4:2:0"] = Field(
            "4:2:0", description="chroma subsampling of colour images"
        )

    # forward() is not overridden: the identity (see the class docstring).
    # prepare() is not overridden either: JPEG draws no random operator
    # state and keeps the size (scale factor 1).

    def corrupt(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Encode ``y`` (C, H, W float in [0, 1]) as JPEG and decode it again.

        ``rng`` is unused: JPEG is deterministic, so the same image always
        gives the same artefacts, whatever the seed.
        """
        import io

        from PIL import Image  # imported here, not at the top: keeps `restorekit list` fast

        codes = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
        pixels = np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)

        def roundtrip(array: np.ndarray, mode: str) -> np.ndarray:
            buf = io.BytesIO()
            # uint8 arrays: (H, W) becomes an "L" image, (H, W, 3) an "RGB" one
            Image.fromarray(array).save(
                buf, format="JPEG", quality=self.params.quality, subsampling=codes[self.params.subsampling]
            )
            buf.seek(0)
            return np.asarray(Image.open(buf).convert(mode))

        if pixels.shape[0] == 3:  # colour: one RGB JPEG, channels last for Pillow
            out = np.moveaxis(roundtrip(np.moveaxis(pixels, 0, -1), "RGB"), -1, 0)
        else:  # gray (or any other channel count): one grayscale JPEG per channel
            out = np.stack([roundtrip(ch, "L") for ch in pixels])
        # Keep the dtype of the input (float32 in restorekit).
        return (out.astype(np.float64) / 255.0).astype(y.dtype)

    # noise_sigma() is left at None: JPEG error is not Gaussian noise of a
    # known level (solver priors then estimate the level themselves).


# ---------------------------------------------------------------------------
# A metric: a no-reference noise estimate
# ---------------------------------------------------------------------------
class NoiseEstimate(Metric):
    """The noise level of ``image_test`` alone, in 0-255 units.

    restorekit metrics have the scikit-image signature
    ``compute(image_true, image_test, *, data_range, mask)``, built for
    full-reference scores (PSNR, SSIM).  A *no-reference* metric judges the
    result on its own: this one ignores ``image_true`` (it is still passed,
    so the metric fits in the same tables) and estimates how much noise is
    left in ``image_test``, so it also makes sense where no clean image
    exists.  Lower is better, hence ``higher_is_better = False``.

    The estimator (Immerkaer, 1996) filters the image with a 3x3 kernel
    that cancels locally linear structure, the difference of two Laplacians::

         1 -2  1
        -2  4 -2
         1 -2  1

    and for Gaussian noise of standard deviation sigma,
    ``sigma = sqrt(pi / 2) * mean(|filtered|) / 6``.  Plain NumPy: edges
    and texture make it overestimate a little, which is fine for comparing
    two results of the same image.
    """

    name = "noise-estimate"
    summary = "No-reference noise level of the result (Immerkaer's Laplacian estimate), 0-255 units."
    higher_is_better = False  # for tables and for the contract check
    unit = "/255"

    # No parameters: the base Params (an empty, strict schema) is inherited.

    def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
        # image_true is deliberately unused: this metric is no-reference.
        img = np.asarray(image_test, dtype=np.float64)
        if img.ndim == 2:
            img = img[..., None]
        h, w = img.shape[:2]
        if h < 3 or w < 3:
            raise UsageError(f"noise-estimate needs at least 3x3 pixels (got {w}x{h})")
        img = img / data_range  # explicit data range, never guessed
        # The 3x3 filter by shifted slices (no scipy needed); 'valid' region only.
        c = img[1:-1, 1:-1]
        n, s, e, wst = img[:-2, 1:-1], img[2:, 1:-1], img[1:-1, 2:], img[1:-1, :-2]
        ne, nw, se, sw = img[:-2, 2:], img[:-2, :-2], img[2:, 2:], img[2:, :-2]
        filtered = np.abs(4 * c - 2 * (n + s + e + wst) + (ne + nw + se + sw))  # (h-2, w-2, C)
        per_pixel = filtered.mean(axis=-1)
        if mask is not None:
            # A mask restricts the score to some pixels (restorekit passes the
            # missing ones for inpainting); keep its interior, like the filter.
            m = np.asarray(mask, dtype=bool)[1:-1, 1:-1]
            if not m.any():
                return float("nan")
            per_pixel = per_pixel[m]
        sigma = np.sqrt(np.pi / 2.0) * per_pixel.mean() / 6.0
        return float(sigma * 255.0)


# ---------------------------------------------------------------------------
# The hooks: how restorekit finds the components
# ---------------------------------------------------------------------------
# Each hook is called once when restorekit starts, with a registry bound to
# one kind and to this plugin.  registry.add() checks the class (name,
# summary, schema) and records that plugin "example" provides it; a bad
# class or a name another plugin already uses makes this plugin fail to
# load with a one-line warning, and the rest of restorekit keeps working.
@hookimpl
def restorekit_register_degradations(registry):
    registry.add(Jpeg)


@hookimpl
def restorekit_register_metrics(registry):
    registry.add(NoiseEstimate)


# The commands hook receives the Typer app of the `restorekit` command line.
# Typer is already imported by then; the command appears in `restorekit --help`.
@hookimpl
def restorekit_register_commands(app):
    @app.command("example-info")
    def example_info() -> None:
        """Show what the restorekit-example plugin provides."""
        print(f"restorekit-example {__version__}")
        print("  degradation jpeg: " + Jpeg.summary)
        print("  metric noise-estimate: " + NoiseEstimate.summary)
