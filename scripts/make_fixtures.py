#!/usr/bin/env python3
"""Generate bnncc's committed test fixtures in tests/fixtures/.

The repo's tests must be hermetic, so every model they use is produced here (or
copied, where the licence allows it) together with reference inputs/outputs:

  brevitas/  BNN-PYNQ style TFC, SFC and CNV at 1w1a, 1w2a and 2w2a with random
             weights and calibrated-then-perturbed BatchNorm, built with Brevitas
             quant layers and exported by brevitas.export.export_qonnx through
             the TorchScript exporter (dynamo=False), kept exactly as exported.
  dynamo/    a small binarized MLP exported by export_qonnx(dynamo=True): the
             newer torch.export based path, weights in an external .onnx.data.
  zoo/       the trained TFC_1W1A / 1W2A / 2W2A of the QONNX model zoo (BSD),
             copied with their licence, refs = first 100 of the shared refs.
  finn/      FINN-ONNX style models (MultiThreshold in finn.custom_op.general,
             TopK output) written with onnx.helper from the zoo TFC weights.

Every fixture has a `<name>.refs.npz` with `inputs` (N, *input shape without
batch, float32) and `outputs` (N, *output shape without batch, float32), plus
`labels` where the inputs are real MNIST images. The outputs are computed by
qonnx's executor (qonnx.core.onnx_exec.execute_onnx) on a cleaned-up in-memory
copy of the model (qonnx.util.cleanup.cleanup_model), one input at a time with
batch 1. index.json lists all fixtures.

Requirements: numpy, onnx, onnxruntime, qonnx (always); torch and brevitas only
for the brevitas/ and dynamo/ families (imported lazily, so --help and
`--only zoo,finn` work without them):

    pip install torch==2.13.0 brevitas==0.13.4 onnxoptimizer

(brevitas' ONNX export refuses to run without onnxoptimizer, which brevitas
does not declare as a dependency; 0.4.2 was used.)

The zoo/ and finn/ families read the QONNX model zoo TFC files and their refs
from --zoo-dir (default $BNNCC_SHARED_MODELS/zoo or /work/shared/models/zoo).

Usage:
    python scripts/make_fixtures.py                  # everything
    python scripts/make_fixtures.py --only zoo,finn  # no torch needed
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures"
DEFAULT_ZOO = Path(os.environ.get("BNNCC_SHARED_MODELS", "/work/shared/models")) / "zoo"
FAMILIES = ("brevitas", "dynamo", "zoo", "finn")
BASE_SEED = 1234

N_MLP_REFS = 100  # MLP reference inputs (random pixels or MNIST images)
N_CNV_REFS = 20  # CNV reference inputs, uniform [-1, 1)
N_ZOO_REFS = 100  # first entries of the zoo refs (real MNIST test images)


def log(msg: str = "") -> None:
    print(msg, flush=True)


def seed_for(name: str) -> int:
    """A stable per-fixture seed (independent of the order fixtures are built in)."""
    return (BASE_SEED + zlib.crc32(name.encode())) % (2**31)


def human(nbytes: int) -> str:
    return f"{nbytes / 1e6:.2f} MB" if nbytes >= 1e5 else f"{nbytes / 1e3:.1f} kB"


# ---------------------------------------------------------------------------
# references with qonnx's executor
# ---------------------------------------------------------------------------


def remap_domain(model, old: str, new: str):
    """Return a copy of an onnx ModelProto with custom-op domain `old` renamed to `new`."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for node in m.graph.node:
        if node.domain == old:
            node.domain = new
    for o in [o for o in m.opset_import if o.domain == old]:
        m.opset_import.remove(o)
    if new not in {o.domain for o in m.opset_import}:
        m.opset_import.append(onnx.helper.make_opsetid(new, 1))
    return m


def qonnx_reference(model_path: Path, inputs: np.ndarray) -> np.ndarray:
    """Run qonnx's executor on a cleaned-up copy, one input at a time, batch 1.

    The file on disk is not modified. FINN's finn.custom_op.general domain is
    renamed to qonnx.custom_op.general in the in-memory copy (FINN is not
    installed; qonnx carries the same MultiThreshold implementation; qonnx's
    ModelWrapper makes the same rename itself, with a warning).
    """
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    proto = onnx.load(str(model_path))  # loads external data from beside the file
    if any(n.domain == "finn.custom_op.general" for n in proto.graph.node):
        proto = remap_domain(proto, "finn.custom_op.general", "qonnx.custom_op.general")
    model = cleanup_model(ModelWrapper(proto))
    iname = model.graph.input[0].name
    oname = model.graph.output[0].name
    outs = []
    for x in inputs:
        y = execute_onnx(model, {iname: x[None].astype(np.float32)})[oname]
        outs.append(np.asarray(y, dtype=np.float32)[0])
    return np.stack(outs)


def save_refs(path: Path, **arrays) -> None:
    np.savez_compressed(path, **arrays)


def report_refs(name: str, outputs: np.ndarray, labels=None, compare=None, kind="logits") -> None:
    pred = outputs.argmax(-1) if kind == "logits" else outputs.reshape(len(outputs), -1)[:, 0]
    pred = pred.astype(np.int64)
    msg = f"  {name}: ref predictions (first 10) {pred[:10].tolist()}"
    if kind == "logits":
        top2 = np.sort(outputs, axis=-1)[:, -2:]
        msg += f"; top-1 ties {int((top2[:, 0] == top2[:, 1]).sum())}/{len(outputs)}"
    if labels is not None:
        msg += f"; accuracy vs labels {np.mean(pred == labels) * 100:.1f}% ({len(labels)} images)"
    log(msg)
    if compare is not None:
        other_name, other_pred = compare
        log(f"  {name}: agrees with {other_name} on {np.mean(pred == other_pred) * 100:.1f}% of inputs")


# ---------------------------------------------------------------------------
# brevitas family (torch + brevitas, imported lazily)
# ---------------------------------------------------------------------------


def torch_defs():
    """Build the torch/brevitas module classes. Imports torch lazily."""
    import importlib.util

    missing = [m for m in ("torch", "brevitas", "onnxoptimizer") if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"make_fixtures: the brevitas/dynamo fixtures need {', '.join(missing)}: "
                 "pip install torch==2.13.0 brevitas==0.13.4 onnxoptimizer "
                 "(or build the others with --only zoo,finn)")
    import torch
    import torch.nn as nn
    from brevitas.core.function_wrapper import TensorClamp
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
    from brevitas.quant.base import IntQuant, PerTensorConstScaling2bit
    from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
    from brevitas.quant.solver import ActQuantSolver
    from brevitas.quant.ternary import SignedTernaryActPerTensorConst, SignedTernaryWeightPerTensorConst

    # Weights: constant scale 1. 1 bit -> bipolar {-1, +1} (BipolarQuant),
    # 2 bits -> narrow signed {-1, 0, 1} (Quant, "ternary").
    class BipolarWeight(SignedBinaryWeightPerTensorConst):
        scaling_const = 1.0

    class TernaryWeight(SignedTernaryWeightPerTensorConst):
        scaling_const = 1.0

    # Activations: constant scale 1 on [-1, 1]. 1 bit -> BipolarQuant,
    # 2 bits -> Quant(bitwidth 2, narrow, signed) = {-1, 0, 1}.
    class BipolarAct(SignedBinaryActPerTensorConst):
        pass

    class TernaryAct(SignedTernaryActPerTensorConst):
        pass

    # CNV's first layer sees 8-bit signed inputs with scale 2^-7 on [-1, 1).
    class Int8InputAct(IntQuant, PerTensorConstScaling2bit, ActQuantSolver):
        bit_width = 8
        min_val = -1.0
        max_val = 1.0
        tensor_clamp_impl = TensorClamp

    def wq(bits):
        return {1: BipolarWeight, 2: TernaryWeight}[bits]

    def aq(bits):
        return {1: BipolarAct, 2: TernaryAct, 8: Int8InputAct}[bits]

    class TensorNorm(nn.Module):
        """Scalar (whole-tensor) batch norm with learnable scale and shift.

        Train mode normalizes with the batch statistics and accumulates running
        statistics (cumulative average when momentum is None, like BatchNorm).
        """

        def __init__(self, eps=1e-4, momentum=0.1):
            super().__init__()
            self.eps = eps
            self.momentum = momentum
            self.weight = nn.Parameter(torch.ones(1))
            self.bias = nn.Parameter(torch.zeros(1))
            self.register_buffer("running_mean", torch.zeros(1))
            self.register_buffer("running_var", torch.ones(1))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

        def reset_running_stats(self):
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

        def forward(self, x):
            if self.training:
                mean = x.mean()
                var = x.var(unbiased=False)
                with torch.no_grad():
                    self.num_batches_tracked += 1
                    m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                    n = x.numel()
                    self.running_mean.mul_(1 - m).add_(m * mean.detach())
                    self.running_var.mul_(1 - m).add_(m * var.detach() * n / max(n - 1, 1))
                return (x - mean) / (var + self.eps).pow(0.5) * self.weight + self.bias
            return (x - self.running_mean) / (self.running_var + self.eps).pow(0.5) * self.weight + self.bias

    class FC(nn.Module):
        """BNN-PYNQ style MLP: [act, (drop, linear, BN, act) * len(hidden), drop, linear, TensorNorm]."""

        def __init__(self, hidden, wbits, abits, in_features=784, classes=10, in_bits=None):
            super().__init__()
            layers = [QuantIdentity(act_quant=aq(in_bits or abits), return_quant_tensor=False)]
            width = in_features
            for h in hidden:
                layers += [
                    nn.Dropout(0.2),
                    QuantLinear(width, h, bias=False, weight_quant=wq(wbits)),
                    nn.BatchNorm1d(h, eps=1e-5),
                    QuantIdentity(act_quant=aq(abits), return_quant_tensor=False),
                ]
                width = h
            layers += [
                nn.Dropout(0.2),
                QuantLinear(width, classes, bias=False, weight_quant=wq(wbits)),
                TensorNorm(),
            ]
            self.features = nn.Sequential(*layers)

        def forward(self, x):
            x = x.reshape(x.shape[0], -1)
            x = 2.0 * x - torch.tensor([1.0], device=x.device)
            return self.features(x)

    class CNV(nn.Module):
        """BNN-PYNQ style CNV: unpadded 3x3 convs 64,64,pool,128,128,pool,256,256; FC 512,512,10."""

        def __init__(self, wbits, abits, classes=10):
            super().__init__()
            conv = [QuantIdentity(act_quant=aq(8), return_quant_tensor=False)]
            cin = 3
            for cout, pool in ((64, False), (64, True), (128, False), (128, True), (256, False), (256, False)):
                conv += [
                    QuantConv2d(cin, cout, kernel_size=3, bias=False, weight_quant=wq(wbits)),
                    nn.BatchNorm2d(cout, eps=1e-4),
                    QuantIdentity(act_quant=aq(abits), return_quant_tensor=False),
                ]
                if pool:
                    conv.append(nn.MaxPool2d(kernel_size=2))
                cin = cout
            self.conv_features = nn.Sequential(*conv)
            lin = []
            width = 256
            for h in (512, 512):
                lin += [
                    QuantLinear(width, h, bias=False, weight_quant=wq(wbits)),
                    nn.BatchNorm1d(h, eps=1e-4),
                    QuantIdentity(act_quant=aq(abits), return_quant_tensor=False),
                ]
                width = h
            lin += [QuantLinear(width, classes, bias=False, weight_quant=wq(wbits)), TensorNorm()]
            self.linear_features = nn.Sequential(*lin)

        def forward(self, x):
            x = 2.0 * x - torch.tensor([1.0], device=x.device)
            x = self.conv_features(x)
            x = x.reshape(x.shape[0], -1)
            return self.linear_features(x)

    return dict(torch=torch, nn=nn, FC=FC, CNV=CNV, TensorNorm=TensorNorm, QuantIdentity=QuantIdentity,
                QuantLinear=QuantLinear, QuantConv2d=QuantConv2d)


def mnist_like_pixels(rng, n):
    """Uniform [0, 1) rounded to multiples of 1/255, shaped like MNIST (n, 1, 28, 28)."""
    return (np.round(rng.random((n, 1, 28, 28)) * 255.0) / 255.0).astype(np.float32)


def init_and_calibrate(D, model, calib_batches, rng, n_zero_gamma=2, neg_frac=0.1):
    """Random weights; BatchNorm/TensorNorm statistics calibrated layer by layer.

    Each norm layer, in network order, is switched to train mode with a
    cumulative running average (momentum=None) while every other layer is in
    eval mode, the calibration batches are run, then its affine parameters are
    set: |gamma| uniform in [0.5, 1.5), about `neg_frac` of the gammas negative,
    `n_zero_gamma` channels with gamma exactly 0, beta ~ N(0, 0.25). Later
    layers are calibrated on the final (eval mode) outputs of earlier ones, so
    about half of each bipolar activation is +1 and thresholds are non-trivial.
    """
    torch, nn = D["torch"], D["nn"]
    for m in model.modules():
        if isinstance(m, (D["QuantLinear"], D["QuantConv2d"])):
            with torch.no_grad():
                # uniform in [-1.5, 1.5): bipolar weights are +-1 with p=1/2,
                # ternary weights (round after clamp to [-1, 1]) are -1/0/1 with p=1/3
                m.weight.copy_(torch.from_numpy(rng.uniform(-1.5, 1.5, m.weight.shape).astype(np.float32)))
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, D["TensorNorm"]))]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
        with torch.no_grad():
            for b in calib_batches:
                model(torch.from_numpy(b))
        norm.eval()
        norm.momentum = 0.1
        with torch.no_grad():
            if isinstance(norm, D["TensorNorm"]):
                norm.weight.fill_(float(rng.uniform(0.5, 1.5)))
                norm.bias.fill_(float(rng.normal(0.0, 0.1)))
                continue
            c = norm.num_features
            gamma = rng.uniform(0.5, 1.5, c)
            order = rng.permutation(c)
            n_neg = max(1, int(round(neg_frac * c)))
            gamma[order[:n_neg]] *= -1.0
            gamma[order[n_neg:n_neg + n_zero_gamma]] = 0.0
            beta = rng.normal(0.0, 0.25, c)
            norm.weight.copy_(torch.from_numpy(gamma.astype(np.float32)))
            norm.bias.copy_(torch.from_numpy(beta.astype(np.float32)))
    model.eval()
    return model


def activation_stats(D, model, x):
    """Fraction of +1 (and of 0) at every hidden quantized activation, for the log."""
    torch = D["torch"]
    acts = [m for m in model.modules() if isinstance(m, D["QuantIdentity"])][1:]  # skip input quant
    stats = []
    hooks = [a.register_forward_hook(lambda mod, inp, out, s=stats: s.append(
        ((out > 0).float().mean().item(), (out == 0).float().mean().item()))) for a in acts]
    with torch.no_grad():
        model(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    return stats


def torch_outputs(D, model, inputs):
    torch = D["torch"]
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[None])).numpy() for x in inputs])


def export_ts(model, example, path: Path):
    from brevitas.export import export_qonnx

    # torch >= 2.9 makes brevitas default to the dynamo exporter: ask for TorchScript.
    export_qonnx(model, args=example, export_path=str(path), dynamo=False)


BREVITAS_ARCHS = {
    "tfc": dict(kind="fc", hidden=(64, 64, 64)),
    "sfc": dict(kind="fc", hidden=(256, 256, 256)),
    "cnv": dict(kind="cnv"),
}
PRECISIONS = {"1w1a": (1, 1), "1w2a": (1, 2), "2w2a": (2, 2)}


def make_brevitas(out: Path, index: list) -> None:
    D = torch_defs()
    torch = D["torch"]
    d = out / "brevitas"
    d.mkdir(parents=True, exist_ok=True)
    for arch, spec in BREVITAS_ARCHS.items():
        for prec, (wb, ab) in PRECISIONS.items():
            name = f"{arch}_{prec}"
            seed = seed_for(name)
            rng = np.random.default_rng(seed)
            torch.manual_seed(seed)
            if spec["kind"] == "fc":
                model = D["FC"](spec["hidden"], wb, ab)
                calib = [mnist_like_pixels(rng, 512) for _ in range(4)]
                inputs = mnist_like_pixels(rng, N_MLP_REFS)
            else:
                model = D["CNV"](wb, ab)
                calib = [rng.uniform(-1.0, 1.0, (64, 3, 32, 32)).astype(np.float32) for _ in range(4)]
                inputs = rng.uniform(-1.0, 1.0, (N_CNV_REFS, 3, 32, 32)).astype(np.float32)
            init_and_calibrate(D, model, calib, rng)
            stats = activation_stats(D, model, inputs)
            path = d / f"{name}.onnx"
            export_ts(model, torch.from_numpy(inputs[:1]), path)
            outputs = qonnx_reference(path, inputs)
            t_out = torch_outputs(D, model, inputs)
            refs = d / f"{name}.refs.npz"
            save_refs(refs, inputs=inputs, outputs=outputs)
            log(f"[brevitas] {name} (seed {seed})")
            log("  hidden activations, fraction +1 (fraction 0): "
                + ", ".join(f"{p:.2f}({z:.2f})" if ab > 1 else f"{p:.2f}" for p, z in stats))
            log(f"  qonnx vs torch: max |diff| {np.abs(outputs - t_out).max():.3g}, "
                f"argmax agree {np.mean(outputs.argmax(-1) == t_out.argmax(-1)) * 100:.0f}%")
            report_refs(name, outputs)
            index.append(entry(name, path, refs, out, "brevitas", "logits"))


# ---------------------------------------------------------------------------
# dynamo family
# ---------------------------------------------------------------------------


def make_dynamo(out: Path, index: list) -> None:
    D = torch_defs()
    torch = D["torch"]
    from brevitas.export import export_qonnx

    d = out / "dynamo"
    d.mkdir(parents=True, exist_ok=True)
    name = "tfc_small_w1a1"
    seed = seed_for(name)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = D["FC"]((32, 32), 1, 1)
    calib = [mnist_like_pixels(rng, 512) for _ in range(4)]
    inputs = mnist_like_pixels(rng, N_MLP_REFS)
    init_and_calibrate(D, model, calib, rng, n_zero_gamma=1)
    path = d / f"{name}.onnx"
    data = d / f"{name}.onnx.data"
    for p in (path, data):
        if p.exists():
            p.unlink()
    # The torch.export based exporter. torch.onnx.export(dynamo=True, external_data=True)
    # writes <file>.onnx and puts the large weights in <file>.onnx.data, but brevitas
    # 0.13.4's manager then re-loads the file with onnx.load (pulling the weights in)
    # and re-saves it with onnx.save: the .onnx it leaves is self-contained and the
    # .onnx.data beside it is no longer referenced. We keep torch's .onnx.data bytes,
    # write the exported graph back with onnx's external-data writer (tensors of
    # >= 1 kB, the ones torch had put outside) and check the bytes are the same.
    export_qonnx(model, args=torch.from_numpy(inputs[:1]), export_path=str(path), dynamo=True,
                 optimize=True, external_data=True)
    restore_external_data(path, data)
    check_external_data(path)
    outputs = qonnx_reference(path, inputs)
    t_out = torch_outputs(D, model, inputs)
    refs = d / f"{name}.refs.npz"
    save_refs(refs, inputs=inputs, outputs=outputs)
    log(f"[dynamo] {name} (seed {seed})")
    log(f"  qonnx vs torch: max |diff| {np.abs(outputs - t_out).max():.3g}, "
        f"argmax agree {np.mean(outputs.argmax(-1) == t_out.argmax(-1)) * 100:.0f}%")
    report_refs(name, outputs)
    e = entry(name, path, refs, out, "dynamo", "logits")
    if data.exists():
        e["external_data"] = data.relative_to(out).as_posix()
    index.append(e)


def restore_external_data(path: Path, data: Path, size_threshold: int = 1024) -> None:
    import onnx

    if not data.exists():
        raise RuntimeError(f"the dynamo export wrote no {data.name}: cannot make an external-data fixture")
    torch_bytes = data.read_bytes()
    model = onnx.load(str(path))  # brevitas' re-saved, self-contained file
    already = any(t.data_location == onnx.TensorProto.EXTERNAL
                  for t in onnx.load(str(path), load_external_data=False).graph.initializer)
    if already:  # a newer brevitas that keeps torch's layout: nothing to do
        log(f"  {path.name}: the exporter kept its external data")
        return
    log(f"  {path.name}: brevitas re-saved the model inline ({path.stat().st_size} bytes); "
        f"{data.name} ({len(torch_bytes)} bytes) was left unreferenced; re-linking")
    data.unlink()
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=size_threshold)
    data.chmod(0o644)
    same = data.read_bytes() == torch_bytes
    log(f"  {data.name}: byte-identical to the file torch's exporter wrote: {same}")
    if not same:
        raise RuntimeError(f"{data.name} differs from the exporter's own file")


def check_external_data(path: Path) -> None:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    ext = [t.name for t in m.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    locs = set()
    for t in m.graph.initializer:
        for kv in t.external_data:
            if kv.key == "location":
                locs.add(kv.value)
    log(f"  {path.name}: {len(ext)} of {len(m.graph.initializer)} initializers external, files {sorted(locs)}")
    if not ext:
        raise RuntimeError(f"{path}: the dynamo export did not write external weights")


# ---------------------------------------------------------------------------
# zoo family (copied, BSD)
# ---------------------------------------------------------------------------

ZOO_NAMES = ("TFC_1W1A", "TFC_1W2A", "TFC_2W2A")


def require_zoo(zoo_dir: Path) -> None:
    missing = [n for n in ZOO_NAMES for s in (".onnx", ".refs.npz") if not (zoo_dir / (n + s)).exists()]
    if missing or not (zoo_dir / "LICENSE.txt").exists():
        sys.exit(f"make_fixtures: the QONNX zoo TFC files are not in {zoo_dir} "
                 f"(missing {missing or ['LICENSE.txt']}); pass --zoo-dir")


def make_zoo(out: Path, index: list, zoo_dir: Path) -> None:
    require_zoo(zoo_dir)
    d = out / "zoo"
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(zoo_dir / "LICENSE.txt", d / "LICENSE.txt")
    for name in ZOO_NAMES:
        path = d / f"{name}.onnx"
        shutil.copyfile(zoo_dir / f"{name}.onnx", path)
        src = np.load(zoo_dir / f"{name}.refs.npz")
        inputs = src["inputs"][:N_ZOO_REFS].astype(np.float32)
        outputs = src["outputs"][:N_ZOO_REFS].astype(np.float32)
        labels = src["labels"][:N_ZOO_REFS].astype(np.int64)
        # the shared refs were made the same way; recompute to be sure they match
        check = qonnx_reference(path, inputs)
        diff = float(np.abs(check - outputs).max())
        if not np.array_equal(check.argmax(-1), outputs.argmax(-1)) or diff > 1e-4:
            raise RuntimeError(f"{name}: recomputed refs differ from the shared refs (max |diff| {diff})")
        refs = d / f"{name}.refs.npz"
        save_refs(refs, inputs=inputs, outputs=outputs, labels=labels)
        log(f"[zoo] {name}: recomputed outputs match shared refs (max |diff| {diff:.3g})")
        report_refs(name, outputs, labels)
        index.append(entry(name, path, refs, out, "zoo", "logits"))


# ---------------------------------------------------------------------------
# finn family (FINN-ONNX written with onnx.helper from the zoo weights)
# ---------------------------------------------------------------------------


def read_zoo_tfc(path: Path):
    """Extract, in order, the MLP's layers from a zoo TFC (old Brevitas export).

    Returns dict(weights=[W (in, out) float, pre-quantization], bns=[(gamma, beta,
    mean, var, eps)], tensornorm=(mean, var_plus_eps, weight, bias)).
    """
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}

    def const(name):
        if name in init:
            return init[name]
        n = producer[name]
        if n.op_type == "Constant":
            return numpy_helper.to_array(n.attribute[0].t)
        raise KeyError(name)

    weights, bns, tn = [], [], {}
    for n in m.graph.node:
        if n.op_type == "MatMul":
            t = producer[n.input[1]]
            assert t.op_type == "Transpose", t.op_type
            q = producer[t.input[0]]
            assert q.op_type == "BipolarQuant", q.op_type
            weights.append(const(q.input[0]).T.astype(np.float64))
        elif n.op_type == "BatchNormalization":
            eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5)
            g, b, mu, var = (const(i).astype(np.float64) for i in n.input[1:5])
            bns.append((g, b, mu, var, float(eps)))
    # TensorNorm: Sub(mean), Pow(var + eps, 0.5), Div, Mul(weight), Add(bias) after the last MatMul
    tail = m.graph.node[[i for i, n in enumerate(m.graph.node) if n.op_type == "MatMul"][-1] + 1:]
    for n in tail:
        if n.op_type == "Sub":
            tn["mean"] = const(n.input[1])
        elif n.op_type == "Pow":
            tn["var_eps"] = const(n.input[0])
        elif n.op_type == "Mul":
            tn["weight"] = const(n.input[1])
        elif n.op_type == "Add":
            tn["bias"] = const(n.input[1])
    assert set(tn) == {"mean", "var_eps", "weight", "bias"}, tn.keys()
    return dict(weights=weights, bns=bns, tensornorm=tn)


def bipolar(x):
    """QONNX BipolarQuant: x >= 0 -> +1, else -1."""
    return np.where(x >= 0, 1.0, -1.0)


class GraphBuilder:
    """Minimal onnx.helper graph builder with FINN-style tensor names and value_info."""

    def __init__(self):
        self.nodes, self.inits, self.vinfo, self.count, self.dtypes = [], [], [], {}, {}

    def name(self, op):
        i = self.count.get(op, 0)
        self.count[op] = i + 1
        return f"{op}_{i}"

    def param(self, node_name, k, arr, dtype=np.float32, finn_dtype=None):
        from onnx import numpy_helper

        pname = f"{node_name}_param{k}"
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=dtype), pname))
        if finn_dtype:
            self.dtypes[pname] = finn_dtype
        return pname

    def node(self, op, inputs, out_shape, params=(), domain="", finn_dtype=None, n_out=1, elem=None,
             outputs=None, **attrs):
        from onnx import TensorProto, helper

        nm = self.name(op)
        ins = list(inputs)
        for k, p in enumerate(params):
            arr, kw = (p if isinstance(p, tuple) else (p, {}))
            ins.append(self.param(nm, k, arr, **kw))
        outs = list(outputs) if outputs else [f"{nm}_out{j}" for j in range(n_out)]
        self.nodes.append(helper.make_node(op, ins, outs, name=nm, domain=domain, **attrs))
        self.vinfo.append(helper.make_tensor_value_info(outs[0], elem or TensorProto.FLOAT, list(out_shape)))
        if finn_dtype:
            self.dtypes[outs[0]] = finn_dtype
        return outs if n_out > 1 else outs[0]


def build_finn_mlp(layers, tensornorm, input_mt, out_path: Path, model_name: str):
    """Write a FINN-ONNX TFC: Div 255, Reshape, Mul 2, Sub 1, MultiThreshold, then per
    layer MatMul (+ layer-specific tail), final TensorNorm as Sub/Div/Mul/Add, TopK.

    layers: list of dict(W=(in,out) bipolar, tail=callable(builder, tensor, width) -> tensor)
    input_mt: (thresholds array, out_scale, out_bias, out_dtype)
    """
    import onnx
    from onnx import TensorProto, helper

    g = GraphBuilder()
    x = "global_in"
    x = g.node("Div", [x], [1, 1, 28, 28], params=[np.float32(255.0)])
    x = g.node("Reshape", [x], [1, 784], params=[(np.array([1, -1]), dict(dtype=np.int64))])
    x = g.node("Mul", [x], [1, 784], params=[np.float32(2.0)])
    x = g.node("Sub", [x], [1, 784], params=[np.array([1.0])])
    thr, osc, obias, odt = input_mt
    x = g.node("MultiThreshold", [x], [1, 784], params=[thr], domain="finn.custom_op.general",
               finn_dtype=odt, out_scale=float(osc), out_bias=float(obias), out_dtype=odt)
    for layer in layers:
        w = layer["W"]
        x = g.node("MatMul", [x], [1, w.shape[1]], params=[(w, dict(finn_dtype="BIPOLAR"))], finn_dtype="INT32")
        x = layer["tail"](g, x, w.shape[1])
    n_cls = layers[-1]["W"].shape[1]
    x = g.node("Sub", [x], [1, n_cls], params=[np.array([tensornorm["mean"]]).reshape(1)])
    x = g.node("Div", [x], [1, n_cls], params=[np.sqrt(np.asarray(tensornorm["var_eps"], np.float32)).reshape(1)])
    x = g.node("Mul", [x], [1, n_cls], params=[np.array(tensornorm["weight"]).reshape(1)])
    x = g.node("Add", [x], [1, n_cls], params=[np.array(tensornorm["bias"]).reshape(1)])
    # TopK: values (float, internal) and indices = the class, the graph output
    g.node("TopK", [x], [1, 1], params=[(np.array([1]), dict(dtype=np.int64))],
           outputs=["TopK_0_out0", "global_out"], axis=-1, largest=1, sorted=1)
    graph = helper.make_graph(
        g.nodes, model_name,
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("global_out", TensorProto.INT64, [1, 1])],
        initializer=g.inits, value_info=g.vinfo)
    model = helper.make_model(
        graph, producer_name="bnncc/scripts/make_fixtures.py",
        opset_imports=[helper.make_opsetid("", 12), helper.make_opsetid("finn.custom_op.general", 1)])
    model.ir_version = 7
    # FINN datatype annotations, as FINN writes them (not via qonnx's ModelWrapper,
    # which would rename the finn.custom_op.general domain)
    dtypes = {"global_in": "UINT8", **g.dtypes, "global_out": "UINT32"}
    for tname, dt in dtypes.items():
        qa = onnx.TensorAnnotation(tensor_name=tname)
        qa.quant_parameter_tensor_names.append(onnx.StringStringEntryProto(key="finn_datatype", value=dt))
        model.graph.quantization_annotation.append(qa)
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))


def make_finn_w1a1(zoo: dict, out_path: Path):
    """TFC-w1a1 in FINN-ONNX form: the zoo TFC_1W1A with weights bipolarized, BN kept
    (MatMul, Mul 1, Unsqueeze, BatchNormalization, Squeeze, MultiThreshold[0] -> BIPOLAR)."""
    bns = zoo["bns"]

    def hidden_tail(bn):
        g_, b_, mu, var, eps = bn

        def tail(g, x, width):
            x = g.node("Mul", [x], [1, width], params=[np.float32(1.0)])
            x = g.node("Unsqueeze", [x], [1, width, 1], axes=[2])
            x = g.node("BatchNormalization", [x], [1, width, 1], params=[g_, b_, mu, var],
                       epsilon=eps, momentum=0.9)
            x = g.node("Squeeze", [x], [1, width], axes=[2])
            return g.node("MultiThreshold", [x], [1, width], params=[np.zeros((1, 1))],
                          domain="finn.custom_op.general", finn_dtype="BIPOLAR",
                          out_scale=2.0, out_bias=-1.0, out_dtype="BIPOLAR")
        return tail

    def last_tail(g, x, width):
        return g.node("Mul", [x], [1, width], params=[np.float32(1.0)])

    ws = zoo["weights"]
    layers = [dict(W=bipolar(w), tail=hidden_tail(bn)) for w, bn in zip(ws[:-1], bns)]
    layers.append(dict(W=bipolar(ws[-1]), tail=last_tail))
    build_finn_mlp(layers, zoo["tensornorm"], (np.zeros((1, 1)), 2.0, -1.0, "BIPOLAR"),
                   out_path, "tfc_w1a1_finn")


# boundaries of the 2-bit (INT2, out_bias -2) hidden quantizer on the BN output:
# q = #(bn >= t) - 2 for t in T_BN, i.e. round-half-up of bn clamped to [-2, 1]
T_BN = (-1.5, -0.5, 0.5)


def int_thresholds(gamma, beta, mu, var, eps, k_max):
    """Per-channel integer thresholds on an integer accumulator a such that
    #(a >= T[c, j]) == #(BN(a) >= T_BN[j]), plus a per-channel sign flip.

    For gamma < 0 the comparison direction flips, so the channel's weight
    column is negated (a' = -a) and the thresholds are computed for a'.
    For gamma == 0 the output is a constant: thresholds at -(k_max+1) /
    +(k_max+1) give that constant on every reachable accumulator value.
    Thresholds are ceil of the real crossing point (exact for integer a).
    """
    sd = np.sqrt(var + eps)
    flip = gamma < 0
    thr = np.zeros((len(gamma), len(T_BN)))
    for c in range(len(gamma)):
        if gamma[c] == 0:
            n_on = sum(beta[c] >= t for t in T_BN)
            thr[c] = [-(k_max + 1)] * n_on + [k_max + 1] * (len(T_BN) - n_on)
            continue
        g, m = (-gamma[c], -mu[c]) if flip[c] else (gamma[c], mu[c])
        for j, t in enumerate(T_BN):
            thr[c, j] = np.clip(np.ceil(m + (t - beta[c]) * sd[c] / g), -(k_max + 1), k_max + 1)
    assert np.all(np.diff(thr, axis=1) >= 0)
    return thr, flip


def make_finn_w1a2_mt(zoo: dict, out_path: Path):
    """A FINN-ONNX TFC with 2-bit MultiThreshold activations on the integer
    accumulators (BatchNorm absorbed into per-channel thresholds), derived from the
    zoo TFC_1W2A: input MultiThreshold [-0.5, 0.5] -> {-1, 0, 1} (the zoo's 2-bit
    narrow input quantizer on 2x-1; ties cannot occur for 8-bit pixel inputs), hidden
    MultiThreshold with 3 thresholds per channel -> INT2 {-2, -1, 0, 1} (the zoo BN
    output rounded half up and clamped to [-2, 1]), weights bipolar with the columns
    of negative-gamma channels negated."""
    ws, bns = zoo["weights"], zoo["bns"]
    layers = []
    in_max = 1  # max |input| to layer 0 ({-1,0,1})
    for li, (w, bn) in enumerate(zip(ws[:-1], bns)):
        k_max = w.shape[0] * in_max
        thr, flip = int_thresholds(*bn, k_max=k_max)
        wb = bipolar(w)
        wb[:, flip] *= -1.0

        def tail(g, x, width, thr=thr):
            return g.node("MultiThreshold", [x], [1, width], params=[thr], domain="finn.custom_op.general",
                          finn_dtype="INT2", out_scale=1.0, out_bias=-2.0, out_dtype="INT2")
        layers.append(dict(W=wb, tail=tail))
        in_max = 2  # INT2 activations reach -2

    def last_tail(g, x, width):
        return g.node("Mul", [x], [1, width], params=[np.float32(1.0)])

    layers.append(dict(W=bipolar(ws[-1]), tail=last_tail))
    build_finn_mlp(layers, zoo["tensornorm"], (np.array([[-0.5, 0.5]]), 1.0, -1.0, "INT2"),
                   out_path, "tfc_w1a2_mt")


def make_finn(out: Path, index: list, zoo_dir: Path) -> None:
    require_zoo(zoo_dir)
    d = out / "finn"
    d.mkdir(parents=True, exist_ok=True)
    src = {n: np.load(zoo_dir / f"{n}.refs.npz") for n in ("TFC_1W1A", "TFC_1W2A")}
    imgs01 = src["TFC_1W1A"]["inputs"][:N_MLP_REFS]
    inputs = np.round(imgs01 * 255.0).astype(np.float32)  # pixel values 0..255 like FINN's input.npy
    assert np.allclose(inputs / 255.0, imgs01, atol=1e-6), "zoo inputs are not k/255"
    labels = src["TFC_1W1A"]["labels"][:N_MLP_REFS].astype(np.int64)
    jobs = [
        ("tfc_w1a1_finn", "TFC_1W1A", make_finn_w1a1),
        ("tfc_w1a2_mt", "TFC_1W2A", make_finn_w1a2_mt),
    ]
    for name, zname, fn in jobs:
        zoo = read_zoo_tfc(zoo_dir / f"{zname}.onnx")
        path = d / f"{name}.onnx"
        fn(zoo, path)
        outputs = qonnx_reference(path, inputs)
        refs = d / f"{name}.refs.npz"
        save_refs(refs, inputs=inputs, outputs=outputs, labels=labels)
        log(f"[finn] {name} (from zoo {zname})")
        zoo_pred = src[zname]["outputs"][:N_MLP_REFS].argmax(-1)
        report_refs(name, outputs, labels, compare=(f"zoo {zname} argmax", zoo_pred), kind="index")
        index.append(entry(name, path, refs, out, "finn", "index"))


# ---------------------------------------------------------------------------


def entry(name, model, refs, out, family, kind):
    return {"name": name, "model": model.relative_to(out).as_posix(), "refs": refs.relative_to(out).as_posix(),
            "family": family, "output_kind": kind}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--zoo-dir", type=Path, default=DEFAULT_ZOO,
                    help=f"folder with the QONNX zoo TFC_*.onnx, TFC_*.refs.npz, LICENSE.txt (default {DEFAULT_ZOO})")
    ap.add_argument("--only", default=",".join(FAMILIES),
                    help=f"comma-separated families to (re)build, of {','.join(FAMILIES)} (default all)")
    args = ap.parse_args(argv)
    only = [f.strip() for f in args.only.split(",") if f.strip()]
    bad = set(only) - set(FAMILIES)
    if bad:
        ap.error(f"unknown families {sorted(bad)}")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    # keep index entries of families not rebuilt now
    index_path = out / "index.json"
    old = json.loads(index_path.read_text()) if index_path.exists() else []
    index = [e for e in old if e["family"] not in only]
    builders = {
        "brevitas": lambda: make_brevitas(out, index),
        "dynamo": lambda: make_dynamo(out, index),
        "zoo": lambda: make_zoo(out, index, args.zoo_dir),
        "finn": lambda: make_finn(out, index, args.zoo_dir),
    }
    for fam in FAMILIES:
        if fam in only:
            builders[fam]()
    order = {f: i for i, f in enumerate(FAMILIES)}
    index.sort(key=lambda e: (order.get(e["family"], len(order)), e["name"]))
    index_path.write_text(json.dumps(index, indent=2) + "\n")

    log("\nfiles:")
    total = 0
    for p in sorted(out.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            total += p.stat().st_size
            log(f"  {p.relative_to(out).as_posix():40s} {human(p.stat().st_size):>10s}")
    log(f"  total {human(total)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
