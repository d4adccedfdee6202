"""Generator networks for Deep Image Prior style restoration.

Every builder returns an ``nn.Module`` with an integer attribute
``required_stride``: inputs whose height and width are multiples of it come
back at the same size (2 ** levels for skip, encoder-decoder and U-Net; 1 for
ResNet). Importing this package imports torch.
"""

from __future__ import annotations

from .common import Concat, activation, conv
from .resnet import build_resnet
from .skip import build_encoder_decoder, build_skip
from .unet import build_unet

__all__ = [
    "Concat",
    "activation",
    "conv",
    "build_skip",
    "build_encoder_decoder",
    "build_resnet",
    "build_unet",
]
