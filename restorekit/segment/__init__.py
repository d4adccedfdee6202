"""Segmentation and layer decomposition from one image (``restorekit segment``, ``restorekit decompose``).

masks.py      which side is the object; IoU, Dice, boundary F-score (torch-free)
baselines.py  Otsu, Chan-Vese, k-means on colours, SLIC + merging, random walker (torch-free)
hints.py      --hint box:x,y,w,h and scribbles:FILE -> restorekit.Hint (torch-free)
regions.py    texture features, per-region Gaussian mixtures, a smoothed (mean-field Potts) assignment (torch-free)
doubledip.py  coupled deep image priors (Double-DIP): segment, transparency, watermark, dehaze
clustering.py per-image CNN clustering (Kanezaki 2018; Kim, Kanezaki, Tanaka 2020)
pipeline.py   one command's work: read, reserve the output folder, decompose, score, write
record.py     run.json's layout (SegmentRecord), published in docs/segment-record.md
dehaze.py     the old import path of the dark channel prior's dehazing, now :mod:`restorekit.decompose.dehaze`
"""

# restorekit.segment(image, ...) calls restorekit.api.segment (the Python API of ``restorekit segment``).
from ..callable_module import make_callable  # noqa: E402

make_callable(__name__, "segment")
del make_callable
