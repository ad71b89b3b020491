"""The values the lowering walk binds to ONNX tensor names: constants (weights, shapes,
BN parameters; quantized constants keep their integers) and activations (integer streams
of hardware layers seen through a position map and a float chain)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from ..datatypes import DataType

@dataclass
class QConst:
    """Integer representation of a quantized constant: value = scale * (q - zeropt)."""

    q: np.ndarray
    scale: np.ndarray
    zeropt: np.ndarray
    dtype: DataType


@dataclass
class Const:
    value: np.ndarray
    quant: QConst | None = None


@dataclass
class Act:
    shape: tuple                  # ONNX shape including batch 1
    pos: np.ndarray               # int, shape `shape`: position in the producer's stream
    src: str | None               # producing layer, INPUT, or None for the raw float input
    dtype: DataType | None
    chain: list = field(default_factory=list)   # ChainOps, params broadcast to `shape`
    shared: bool = False          # the producer's output also feeds something else
    pad: tuple | None = None      # a Pad node's (top, left, bottom, right, real value), not
                                  # yet applied: the Conv reading it pads in its window


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def hw_perm(ndim: int) -> tuple:
    """Axes permutation from an ONNX NC... tensor to the channels-last hardware order."""
    return (0,) + tuple(range(2, ndim)) + (1,) if ndim > 2 else tuple(range(ndim))


def canonical_pos(shape: tuple) -> np.ndarray:
    """Stream positions of a freshly produced tensor (channels last)."""
    perm = hw_perm(len(shape))
    hw_shape = tuple(shape[p] for p in perm)
    return np.transpose(np.arange(int(np.prod(shape))).reshape(hw_shape), np.argsort(perm))



@dataclass
class Cmp:
    """A boolean tensor `x >= t` (`x > t` when strict; negated when `neg`) not yet turned
    into numbers: Where / Cast / Not decide what the two outcomes are worth."""

    x: Act
    t: np.ndarray                 # broadcast to x.shape
    strict: bool
    neg: bool = False
