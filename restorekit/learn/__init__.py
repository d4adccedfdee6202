"""Learned restoration: networks trained on example images (``restorekit train``, ``--prior learned``).

Imported only by the commands and the prior that use it: listing components
does not import torch.
"""
