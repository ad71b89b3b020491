"""How integer tensors travel on hardware streams (shared by the HLS and RTL backends).

An element of datatype dt is stored in dt.bits bits: a bipolar value as one bit (1 = +1),
a signed value in two's complement, an unsigned value as is. A word of E elements holds
element i in bits [i * bits, (i + 1) * bits) (element 0 in the least significant bits).
A frame is the layer's tensor flattened in C order (channels last), cut into words.
"""
from __future__ import annotations

import numpy as np

from .datatypes import DataType


def encode(values: np.ndarray, dt: DataType) -> np.ndarray:
    """Integer values -> unsigned codes of dt.bits bits (uint64)."""
    v = np.asarray(values, np.int64)
    if dt.is_bipolar:
        return (v > 0).astype(np.uint64)
    return (v & ((1 << dt.bits) - 1)).astype(np.uint64)


def decode(codes: np.ndarray, dt: DataType) -> np.ndarray:
    """Unsigned codes -> integer values."""
    c = np.asarray(codes).astype(np.int64)
    if dt.is_bipolar:
        return 2 * (c & 1) - 1
    c = c & ((1 << dt.bits) - 1)
    if dt.signed:
        c = np.where(c >= (1 << (dt.bits - 1)), c - (1 << dt.bits), c)
    return c


def pack_words(values: np.ndarray, dt: DataType, elems: int) -> list[int]:
    """Flat integer values -> Python ints, `elems` elements per word (arbitrary width)."""
    codes = encode(np.asarray(values).reshape(-1, elems), dt)
    out = []
    for row in codes:
        w = 0
        for i, c in enumerate(row.tolist()):
            w |= int(c) << (i * dt.bits)
        out.append(w)
    return out


def unpack_words(words: list[int], dt: DataType, elems: int) -> np.ndarray:
    mask = (1 << dt.bits) - 1
    codes = np.array([[(w >> (i * dt.bits)) & mask for i in range(elems)] for w in words],
                     dtype=np.uint64)
    return decode(codes, dt).reshape(-1)


# -- word files (the testbenches' format, documented in templates/hls/tb.cpp.j2) ---------
def words_to_bytes(values: np.ndarray, dt: DataType, elems: int, word_bits: int) -> bytes:
    """Integer values (flat, frames back to back) -> word file contents: `elems` elements
    of dt.bits per word, each word ceil(word_bits/8) bytes, least significant byte first."""
    codes = encode(np.asarray(values).reshape(-1, elems), dt)
    shifts = np.arange(dt.bits, dtype=np.uint64)
    bits = ((codes[..., None] >> shifts) & np.uint64(1)).astype(np.uint8).reshape(len(codes), -1)
    nbytes = (word_bits + 7) // 8
    pad = np.zeros((len(codes), 8 * nbytes - bits.shape[1]), np.uint8)
    return np.packbits(np.concatenate([bits, pad], 1), axis=1, bitorder="little").tobytes()


def bytes_to_values(data: bytes, dt: DataType, elems: int, word_bits: int) -> np.ndarray:
    """Word file contents -> flat integer values (int64)."""
    nbytes = (word_bits + 7) // 8
    raw = np.frombuffer(data, np.uint8)
    if raw.size % nbytes:
        raise ValueError(f"word file of {raw.size} bytes is not a whole number of "
                         f"{nbytes}-byte words")
    bits = np.unpackbits(raw.reshape(-1, nbytes), axis=1, bitorder="little")
    bits = bits[:, :elems * dt.bits].reshape(-1, elems, dt.bits).astype(np.uint64)
    codes = (bits << np.arange(dt.bits, dtype=np.uint64)).sum(-1, dtype=np.uint64)
    return decode(codes, dt).reshape(-1)
