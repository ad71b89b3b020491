"""ResNet-style fixtures with float residual adds of per-channel-scaled operands.

Writes tests/fixtures/resnet/ (family "resnet" of tests/fixtures/index.json; the other
families' entries are kept):
  resnet_ts.onnx / resnet_dynamo.onnx  a CIFAR ResNet-20-style network at 4 bits, shrunk
      (16x16 input, stages of width 8 / 16 / 32, one basic block each), exported with
      brevitas' TorchScript and dynamo QONNX exporters;
  *.refs.npz  inputs and the qonnx executor's outputs.

Each block is QuantReLU(q2(bn2(conv2(relu1(bn1(conv1(x)))))) + shortcut(x)) with the
add in float: q2 and the 1x1 shortcut's quantizer have per-output-channel power-of-two
scales (the BatchNorm folded into the quantizer), so the two operands of the add carry
different per-channel scales; the quantizers that feed convolutions are per-tensor.
Weights random, BatchNorm statistics calibrated with random gammas / betas (as
make_dws_fixtures), activation scales calibrated on random inputs. Needs the `export`
extra (torch, brevitas, onnxoptimizer).

    python scripts/make_resnet_fixtures.py [--out tests/fixtures]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_dws_fixtures import calibrate, export, qonnx_outputs  # noqa: E402

N_REFS, SHAPE = 8, (3, 16, 16)


def _quants():
    from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint,
                                Uint8ActPerTensorFixedPoint)

    class W4(Int8WeightPerTensorFixedPoint):
        bit_width = 4
        scaling_per_output_channel = True

    class A4(Uint8ActPerTensorFixedPoint):     # per-tensor ReLU quantizer (feeds a conv)
        bit_width = 4

    class S4PC(Int8ActPerTensorFixedPoint):    # signed, one power-of-two scale per channel
        bit_width = 4
        scaling_per_output_channel = True
        scaling_stats_permute_dims = (1, 0, 2, 3)
    return W4, A4, S4PC, Int8ActPerTensorFixedPoint


def resnet():
    import torch.nn as nn
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
    W4, A4, S4PC, I8 = _quants()

    def conv(ci, co, k, stride=1):
        return QuantConv2d(ci, co, k, stride=stride, padding=k // 2, bias=False,
                           weight_quant=W4)

    def pc(c):
        return QuantIdentity(act_quant=S4PC, per_channel_broadcastable_shape=(1, c, 1, 1))

    class Block(nn.Module):
        def __init__(self, ci, co, stride):
            super().__init__()
            self.conv1, self.bn1, self.relu1 = conv(ci, co, 3, stride), nn.BatchNorm2d(co), \
                QuantReLU(act_quant=A4)
            self.conv2, self.bn2, self.q2 = conv(co, co, 3), nn.BatchNorm2d(co), pc(co)
            self.short = None if stride == 1 and ci == co else nn.Sequential(
                conv(ci, co, 1, stride), nn.BatchNorm2d(co), pc(co))
            self.out = QuantReLU(act_quant=A4)

        def forward(self, x):
            y = self.q2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))
            return self.out(y + (x if self.short is None else self.short(x)))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = QuantIdentity(act_quant=I8)
            self.stem = nn.Sequential(conv(3, 8, 3), nn.BatchNorm2d(8), QuantReLU(act_quant=A4))
            self.blocks = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2), Block(16, 32, 2))
            self.fc = QuantLinear(32 * 4 * 4, 10, bias=False, weight_quant=W4)

        def forward(self, x):
            y = self.blocks(self.stem(self.inp(x)))
            return self.fc(y.flatten(1))
    return ResNet()


def build(seed: int, path: Path, dynamo: bool):
    import torch
    from brevitas.graph.calibrate import calibration_mode
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = resnet()
    batches = [rng.uniform(-1, 1, (16,) + SHAPE).astype(np.float32) for _ in range(2)]
    calibrate(model, batches, rng)
    with torch.no_grad(), calibration_mode(model):
        for b in batches:
            model(torch.from_numpy(b))
    model.eval()
    inputs = rng.uniform(-1, 1, (N_REFS,) + SHAPE).astype(np.float32)
    export(model, torch.from_numpy(inputs[:1]), path, dynamo)
    outputs = qonnx_outputs(path, inputs)
    with torch.no_grad():
        t_out = np.asarray(model(torch.from_numpy(inputs)))
    print(f"{path.name}: {path.stat().st_size} bytes, qonnx vs torch max |diff| "
          f"{np.abs(outputs - t_out).max():.3g}", file=sys.stderr)
    np.savez_compressed(str(path).replace(".onnx", ".refs.npz"), inputs=inputs, outputs=outputs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures")
    args = ap.parse_args(argv)
    d = Path(args.out) / "resnet"
    d.mkdir(parents=True, exist_ok=True)
    index_path = Path(args.out) / "index.json"
    old = json.loads(index_path.read_text()) if index_path.exists() else []
    index = [e for e in old if e.get("family") != "resnet"]
    for dynamo in (False, True):
        name = f"resnet_{'dynamo' if dynamo else 'ts'}"
        try:
            build(5, d / f"{name}.onnx", dynamo)
        except Exception as e:      # the dynamo exporter is optional: say why, keep going
            print(f"{name}: export failed ({type(e).__name__}: {e})", file=sys.stderr)
            continue
        index.append({"name": name, "model": f"resnet/{name}.onnx",
                      "refs": f"resnet/{name}.refs.npz", "family": "resnet",
                      "output_kind": "logits"})
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
