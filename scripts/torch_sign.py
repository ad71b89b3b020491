"""The BinaryNet sign with a straight-through gradient, shared by the fixture scripts.

Imported only by scripts that already need torch (the `export` extra).
"""
from __future__ import annotations

import torch


class SignSTE(torch.autograd.Function):
    """torch.sign forward (sign(0) = 0); gradient passed where |x| <= 1 (BinaryNet)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sign(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)
