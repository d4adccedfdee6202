"""Learned restoration: networks trained on example images (``restorekit train``, ``--prior learned``).

data.py      training data: image folders cut into patches, the bundled data sets
loop.py      the one training loop (every network restorekit trains: train's, the ``faces`` classifier)
train.py     ``restorekit train``: examples, epochs, validation, checkpoints, ``--resume``
model.py     a model folder on disk (model.safetensors + model.json)
evaluate.py  ``restorekit eval``; sample.py ``restorekit sample``
nets.py      the old import path of the networks, which live in :mod:`restorekit.nets.learned`

Imported only by the commands and the prior that use it: listing components
does not import torch.
"""
