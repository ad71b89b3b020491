"""Bipolar tensors packed along channels, 64 per uint64 word (bit 1 = +1).

The golden model passes bipolar activations between layers in this form when the
channel count is a multiple of 64, so sliding windows, max pooling (an OR of bits) and
XNOR-popcount layers work on words instead of bytes. Every layer also accepts plain
integer arrays; `unpacked` turns either into plain values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def pack_bits(v: np.ndarray) -> np.ndarray:
    """Bipolar values (..., K) -> uint64 words (..., ceil(K/64)), zero-padded."""
    bits = (np.asarray(v) > 0).astype(np.uint8)
    k = bits.shape[-1]
    pad = (-k) % 64
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), np.uint8)], -1)
    return np.packbits(bits, axis=-1, bitorder="little").view(np.uint64)


@dataclass
class Packed:
    words: np.ndarray     # (..., channels / 64) uint64
    channels: int

    @property
    def shape(self) -> tuple:
        return self.words.shape[:-1] + (self.channels,)

    def reshape(self, shape: tuple):
        """Packed when word boundaries survive the reshape, plain values otherwise."""
        shape = tuple(shape)
        if self.channels % 64 == 0 and shape[-1] % 64 == 0:
            return Packed(self.words.reshape(shape[:-1] + (shape[-1] // 64,)), shape[-1])
        return self.unpack().reshape(shape)

    def unpack(self) -> np.ndarray:
        bits = np.unpackbits(self.words.view(np.uint8), axis=-1, bitorder="little")
        return (2 * bits[..., : self.channels].astype(np.int8) - 1).astype(np.int8)


def unpacked(x) -> np.ndarray:
    return x.unpack() if isinstance(x, Packed) else x
