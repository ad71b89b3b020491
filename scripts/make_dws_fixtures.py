"""Depthwise-separable fixtures from brevitas_examples' own building blocks.

Writes tests/fixtures/dws/ (family "dws" of tests/fixtures/index.json; the other
families' entries are kept):
  mbv1_blocks_ts.onnx / mbv1_blocks_dynamo.onnx  a MobileNet-v1 block stack at 4 bits
      (an 8-bit input quantizer, the init ConvBlock, then DwsConvBlocks: depthwise 3x3 +
      pointwise 1x1 at stride 1 and 2), exported with TorchScript and with dynamo;
  *.refs.npz  inputs and the qonnx executor's outputs.
and, with --big DIR, brevitas_examples' MobileNet-v1 (4 bit, width 0.25) and ProxylessNAS
mobile14 (4 bit) with random weights and calibrated BatchNorm statistics into DIR (too large
to commit; the slow tests generate them with `build_imagenet_model`). These have no input
quantizer (float pixels): their reference inputs lie on the INT8 x 2^-7 grid, so run them
with `--input-type INT8 --input-scale 0.0078125`.

The networks are the installed brevitas_examples classes (ConvBlock, DwsConvBlock,
quant_mobilenet_v1, quant_proxylessnas_mobile14); weights are random, BatchNorm statistics
are calibrated on random inputs and then given random gammas and betas, so every
threshold is non-trivial. Needs the `export` extra (torch, brevitas, onnxoptimizer).

    python scripts/make_dws_fixtures.py [--out tests/fixtures] [--big /tmp/dws]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

N_REFS = 8


def _torch():
    import torch
    import torch.nn as nn
    return torch, nn


def calibrate(model, batches, rng, neg_frac=0.1):
    """Random weights; each BatchNorm's running statistics from the batches (cumulative
    average, the layers before it already final), then random gamma (about neg_frac
    negative) and beta."""
    torch, nn = _torch()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan = m.weight[0].numel()
                m.weight.copy_(torch.from_numpy(
                    rng.normal(0, 1.5 / np.sqrt(fan), m.weight.shape).astype(np.float32)))
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
        with torch.no_grad():
            for b in batches:
                model(torch.from_numpy(b))
        norm.eval()
        with torch.no_grad():
            c = norm.num_features
            gamma = rng.uniform(0.5, 1.5, c)
            gamma[rng.permutation(c)[:max(1, int(neg_frac * c))]] *= -1
            norm.weight.copy_(torch.from_numpy(gamma.astype(np.float32)))
            norm.bias.copy_(torch.from_numpy(rng.normal(0.5, 0.5, c).astype(np.float32)))
    model.eval()
    return model


def block_stack():
    """Input quantizer, init ConvBlock 3 -> 8, DwsConvBlocks 8 -> 16 (stride 1),
    16 -> 16 (stride 2), 16 -> 24 (stride 1)."""
    torch, nn = _torch()
    from brevitas.nn import QuantIdentity
    from brevitas.quant import Int8ActPerTensorFloat
    from brevitas_examples.imagenet_classification.models.mobilenetv1 import (ConvBlock,
                                                                              DwsConvBlock)

    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
            self.init = ConvBlock(3, 8, 3, weight_bit_width=4, act_bit_width=4, padding=1,
                                  activation_scaling_per_channel=True)
            self.b1 = DwsConvBlock(8, 16, 1, 4, 4, pw_activation_scaling_per_channel=True)
            self.b2 = DwsConvBlock(16, 16, 2, 4, 4, pw_activation_scaling_per_channel=True)
            self.b3 = DwsConvBlock(16, 24, 1, 4, 4)

        def forward(self, x):
            y = self.b3(self.b2(self.b1(self.init(self.inp(x)))))
            return getattr(y, "value", y)    # one float output, not a QuantTensor tuple
    return Stack()


def imagenet_model(name: str):
    """brevitas_examples' MobileNet-v1 4 bit at width 0.25 or ProxylessNAS mobile14 4 bit."""
    from configparser import ConfigParser
    import brevitas_examples.imagenet_classification.models as M
    cfg = ConfigParser()
    ini = "quant_mobilenet_v1_4b" if name == "mobilenet_v1_025" else "quant_proxylessnas_mobile14_4b"
    cfg.read(str(Path(M.__file__).parent / "cfg" / f"{ini}.ini"))
    if name == "mobilenet_v1_025":
        cfg.set("MODEL", "WIDTH_SCALE", "0.25")
        return M.mobilenetv1.quant_mobilenet_v1(cfg)
    return M.proxylessnas.quant_proxylessnas_mobile14(cfg)


def qonnx_outputs(path: Path, inputs: np.ndarray) -> np.ndarray:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    m = ModelWrapper(str(path)).transform(InferShapes())
    iname, oname = m.graph.input[0].name, m.graph.output[0].name
    return np.concatenate([execute_onnx(m, {iname: x[None]})[oname] for x in inputs])


def export(model, example, path: Path, dynamo: bool) -> None:
    from brevitas.export import export_qonnx
    kw = dict(dynamo=True, optimize=True) if dynamo else dict(dynamo=False)
    export_qonnx(model, args=example, export_path=str(path), **kw)
    data = Path(str(path) + ".data")
    if data.exists():
        data.unlink()


def build(model, shape, seed: int, path: Path, dynamo: bool, n_refs: int = N_REFS,
          calib=(2, 16), grid: bool = False):
    torch, _ = _torch()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    batches = [rng.uniform(-1, 1, (calib[1],) + shape).astype(np.float32)
               for _ in range(calib[0])]
    calibrate(model, batches, rng)
    inputs = rng.uniform(-1, 1, (n_refs,) + shape).astype(np.float32)
    if grid:     # float pixels on the INT8 x 2^-7 grid: the type the user declares
        inputs = (np.clip(np.round(inputs * 128), -128, 127) / 128).astype(np.float32)
    export(model, torch.from_numpy(inputs[:1]), path, dynamo)
    outputs = qonnx_outputs(path, inputs)
    with torch.no_grad():
        t_out = model(torch.from_numpy(inputs))
    t_out = np.asarray(getattr(t_out, "value", t_out))
    print(f"{path.name}: {path.stat().st_size} bytes, output {list(outputs.shape)}, "
          f"nonzero {np.mean(outputs != 0):.2f}, qonnx vs torch max |diff| "
          f"{np.abs(outputs - t_out).max():.3g}", file=sys.stderr)
    np.savez_compressed(str(path).replace(".onnx", ".refs.npz"), inputs=inputs, outputs=outputs)
    return inputs, outputs


def build_imagenet_model(name: str, out: Path, size: int = 224, n_refs: int = 2) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.onnx"
    build(imagenet_model(name), (3, size, size), 7 if "mobile" in name else 11, path, False,
          n_refs, calib=(1, 4), grid=True)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures")
    ap.add_argument("--big", default=None, help="also write the ImageNet models here")
    args = ap.parse_args(argv)
    d = Path(args.out) / "dws"
    d.mkdir(parents=True, exist_ok=True)
    index_path = Path(args.out) / "index.json"
    old = json.loads(index_path.read_text()) if index_path.exists() else []
    index = [e for e in old if e.get("family") != "dws"]
    for dynamo in (False, True):
        name = f"mbv1_blocks_{'dynamo' if dynamo else 'ts'}"
        build(block_stack(), (3, 12, 12), 3, d / f"{name}.onnx", dynamo)
        index.append({"name": name, "model": f"dws/{name}.onnx",
                      "refs": f"dws/{name}.refs.npz", "family": "dws",
                      "output_kind": "activations"})
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    if args.big:
        for name in ("mobilenet_v1_025", "proxylessnas_mobile14"):
            build_imagenet_model(name, Path(args.big))
    return 0


if __name__ == "__main__":
    sys.exit(main())
