"""Seeded random binarized / low-bit ONNX networks with reference outputs.

Used by the test suites: every level of the verification ladder (golden model,
C simulation, RTL simulation) is checked against ``NetCase.outputs``, which come
from the reference executors (the qonnx executor for QONNX graphs, onnxruntime
for plain ONNX graphs).

Families
--------
``qonnx-fc`` / ``qonnx-conv``
    What Brevitas exports: float weight initializers through ``Quant`` /
    ``BipolarQuant`` (domain ``qonnx.custom_op.general``), ``Transpose`` +
    ``MatMul`` or ``Conv``, ``BatchNormalization``, then an activation
    quantizer (``BipolarQuant`` or signed 2-4 bit ``Quant``).  The input goes
    through an 8-bit signed ``Quant`` (scale 2^-7) or a ``BipolarQuant``,
    optionally after scalar ``Mul`` / ``Sub`` / ``Add`` preprocessing.  The last
    layer is a quantized-weight ``MatMul`` followed by an optional per-channel
    ``Mul`` + scalar ``Add``, or a TensorNorm-style ``Sub``/``Div``/``Mul``/
    ``Add``, optionally ending in ``ArgMax`` (keepdims=0) or ``TopK`` (k=1).
``plain-fc`` / ``plain-conv``
    What ``torch.onnx`` exports for a sign-BNN: ``Sign`` of float weight
    initializers (never zero), ``Gemm`` (transB=1) or ``Transpose`` +
    ``MatMul`` / ``Conv``, ``BatchNormalization``, ``Sign`` activations, input
    ``Sign``.  ONNX ``Sign(0) == 0``: some cases feed exact zeros into the
    input ``Sign`` (``meta["sign_zero_inputs"]``); hidden ``Sign`` inputs are
    never zero.

Exactness
---------
All scales are powers of two and all weights / biases / inputs are dyadic
(inputs are multiples of 2^-10 in [-1, 1)), so everything up to a
BatchNormalization is exact in float32 whatever the evaluation order.  Every
BatchNormalization feeding an activation is one of two kinds
(``meta["layers"][i]["bn"]``):

* ``"random"`` -- random float statistics; the parameters are re-drawn until
  no quantizer decision boundary lies within a float32 rounding margin of a
  reachable accumulator value, so any sane float evaluation order (ORT's
  scale/bias form, (x-mean)/std*gamma+beta, Conv+BN fusion ...) quantizes
  identically;
* ``"dyadic"`` -- mean, gamma, beta dyadic, var + eps an exact power of four:
  every evaluation order is exact, and some channels are placed so that a
  reachable accumulator hits a decision boundary exactly (a tie: BipolarQuant
  maps 0 to +1, Quant rounds half to even).

Some channels have gamma == 0 exactly (constant channels) and about 20% have
gamma < 0.  Outputs after the last layer are exact dyadic floats (or int64
indices for ArgMax / TopK).

Each case carries ``meta`` describing what was generated (layers, kernels,
strides, padding, bits, narrow, per-channel scales, BN kind, tail ops ...), the
names of the hidden activation tensors (``meta["act_tensors"]``) and the
outputs of the generator's own float64 NumPy model of the network
(``meta["sim_outputs"]``), which must equal ``outputs`` exactly.

Integer families (``random_int_network``, ``INT_FAMILIES``)
-----------------------------------------------------------
Kept apart from ``FAMILIES`` so that ``random_network(seed)`` generates exactly
what it always did.  ``random_int_network(seed)`` cycles through:

``qonnx-int-fc`` / ``qonnx-int-conv``
    Brevitas-style 2-8 bit integer nets.  Input: signed ``Quant`` (4-8 bit,
    scale 2^-(bits-1), any rounding mode).  Hidden layer: weights through a
    signed ``Quant`` (2-8 bit, per-tensor or per-output-channel power-of-two
    scales, narrow or not, mostly ROUND), ``Transpose`` + ``MatMul``, ``MatMul``
    with an (in, out) weight, ``Gemm`` (transB=1, bias as C) or ``Conv`` (bias
    as its third input or as a following ``Add``); biases are multiples of the
    accumulator scale, finer dyadic values, or go through a 16 / 24 bit
    ``Quant`` whose scale is the accumulator scale; optional
    ``BatchNormalization`` (random with a float32 margin, or dyadic with exact
    ties; only where the accumulator range is at most 2^15 grid steps, else
    ``bn_skipped`` in the layer meta); then ``Relu`` + unsigned ``Quant``
    (signed=0) or a signed ``Quant``, 2-8 bit, narrow or not, per-tensor or
    per-channel (scale shape (1, C) or (1, C, 1, 1)), any rounding mode of
    ``ROUNDING_MODES`` (all that qonnx 1.0 accepts).  Without BatchNorm the
    quantizer input is exact, and its scale is usually at least twice the
    accumulator grid, so exact ties (x / scale = k + 0.5, or an integer for
    FLOOR / CEIL / UP / DOWN) occur; ``meta["quantizers"]`` counts them on the
    test inputs.  Head: quantized FC with bias, float logits (exact dyadic) or
    ``ArgMax``.
``qonnx-residual``
    FC or conv: a stem layer producing a quantized tensor t, then one or two
    blocks.  Add block: branch A is one or two layers (same width, 1x1 or 3x3
    "same" convs) ending in a signed (or Relu + unsigned) ``Quant`` of scale
    s_a; branch B is t itself or a quantized 1x1 / FC layer of scale s_b;
    s_a / s_b is 1, 2^+-1, 2^+-2, 3, 1.5 or 0.75 (``meta["blocks"]``); then
    ``Add`` -> ``Relu`` -> unsigned ``Quant`` (the requantization after the
    add).  Concat block: two branches quantized with the same scale (t itself
    or a layer, and a layer), ``Concat`` on the channel axis.
``qdq-fc`` / ``qdq-conv``
    int8 QDQ graphs in the form onnxruntime's ``quantize_static``
    (QuantFormat.QDQ) writes, built directly: per-tensor uint8 or int8
    QuantizeLinear / DequantizeLinear pairs on activations with MinMax
    parameters from calibration data (optionally symmetric), int8 weight
    initializers with DequantizeLinear (per-tensor, or per-channel with axis 0
    for Conv / Gemm transB=1 and axis 1 for MatMul / Gemm (K, M) weights),
    int32 biases whose DequantizeLinear scale is float32(input scale * weight
    scale), a ``MatMul`` + ``Add`` form whose bias is quantized like an
    activation (as quantize_static does for a separate Add), Relu either
    removed (the zero point at qmin saturates negatives: quantize_static's
    default) or kept between two QDQ pairs with equal parameters
    (ActivationSymmetric / QDQKeepRemovableActivations), MaxPool / Flatten /
    Reshape wrapped with their input's parameters, and a final
    DequantizeLinear output.  Scales are arbitrary float32, so the reference
    (onnxruntime, graph optimizations disabled) is a float computation:
    ``meta["near_boundary"]`` says whether any requantization input came within
    1e-6 (relative to sum |x_i * w_i| + |b|) of a rounding boundary on the
    test inputs; only then may the exact numpy model (``sim_outputs``) and
    ``outputs`` differ.  ``meta["fused_outputs"]`` holds onnxruntime's outputs
    with default optimizations (QLinearConv / QGemm kernels).

Padded binary convolutions (``random_padded_network``, ``PADDED_FAMILY``)
-----------------------------------------------------------------------
``binary-pad-conv``: 1-3 convs over bipolar activations with pads 0-2 per side,
strides 1-2, kernels 1-5, as explicit pads, ``auto_pad`` SAME_UPPER / SAME_LOWER or
a constant ``Pad`` node (0, +1, -1) before the Conv; QONNX or plain ONNX
(``padded``).

QONNX references for the integer families run all inputs in one batch (one
session per node in qonnx's executor; the ops act on each row independently).

Layout
------
``common`` (NetCase, numpy semantics, activation descriptors, the graph
builder), ``reference`` (onnxruntime / qonnx execution), ``bn`` (BatchNorm
statistics with a float32 margin or exact ties), ``binary`` (``FAMILIES``),
``intlayers`` (integer layer builders shared by QONNX and QDQ), ``integer``
(``INT_FAMILIES``, residual / concat blocks), ``qdq`` (quantize_static-style
graphs), ``padded`` (``PADDED_FAMILY``).  A new family is a builder function in its
module plus its name in the family tuple.

"""

from .binary import FAMILIES, iter_networks, random_network
from .common import ONNX_OPSET, QONNX_DOMAIN, ROUNDING_MODES, NetCase
from .integer import INT_FAMILIES, iter_int_networks, random_int_network
from .padded import PADDED_FAMILY, random_padded_network
from .reference import reference_outputs

__all__ = [
    "FAMILIES", "INT_FAMILIES", "ONNX_OPSET", "PADDED_FAMILY", "QONNX_DOMAIN", "ROUNDING_MODES",
    "NetCase", "iter_int_networks", "iter_networks", "random_int_network", "random_network",
    "random_padded_network", "reference_outputs",
]
