"""Every network restorekit builds, in one place. Importing this package imports torch.

skip.py, unet.py, resnet.py  the deep-image-prior generators: every builder returns an ``nn.Module``
                             with an integer attribute ``required_stride``: inputs whose height and
                             width are multiples of it come back at the same size (2 ** levels for
                             skip, encoder-decoder and U-Net; 1 for ResNet)
identity.py                  the image itself as the parameter (no network; the penalty priors)
common.py                    the blocks they share (conv, activation, Concat)
learned.py                   the networks of learned restoration (``restorekit train``): ResUNet,
                             DnCNN, the convolutional and dense autoencoders; also DIP generators,
                             and ARCHITECTURES, the table of what model.json names by "architecture"

The generators that build them, by the name a spec uses, are in
:mod:`restorekit.builtins.generators`.
"""

from __future__ import annotations

from .common import Concat, activation, conv
from .learned import ARCHITECTURES, ConvAutoencoder, DenseAutoencoder, DnCNN, ResUNet, build_architecture
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
    "ARCHITECTURES",
    "build_architecture",
    "ResUNet",
    "DnCNN",
    "ConvAutoencoder",
    "DenseAutoencoder",
]
