#!/usr/bin/env python3
"""Make the tutorial-style BinaryNet fixtures in tests/fixtures/tutorial/.

Networks written the way BinaryNet tutorials write them in PyTorch, with random
weights and BatchNorm statistics (the fixtures test compilation, not accuracy):

  * weights binarized by a custom autograd sign (straight-through estimator) on float
    weights stored as floats: the graph holds `Sign(w)`;
  * activations: BatchNorm, Hardtanh (exported as Clip), then the next layer binarizes
    its input with a custom autograd sign written with torch.where(x >= 0, 1, -1)
    (GreaterOrEqual + Where + Neg, sign(0) = +1);
  * the first layer takes the float pixels (8-bit values / 256; bnncc is told
    --input-type UINT8 --input-scale 0.00390625), `x.view(x.size(0), -1)` before the
    classifier, LogSoftmax at the end.

  binarynet_mlp   (1, 1, 8, 8) -> view -> 64->48 -> 48->32 -> 32->10 -> LogSoftmax
  binarynet_cnn   (1, 3, 12, 12) -> conv3x3 16 -> conv3x3 16 -> maxpool2 (before its
                  BatchNorm, as BinaryNet does) -> conv3x3 32
                  -> view -> 128->10 -> LogSoftmax   (convs without padding)

  binarynet_sr    (1, 1, 10, 10) -> conv3x3 8 -> BatchNorm -> Hardtanh -> sign -> conv3x3 4
                  -> PixelShuffle(2) (DepthToSpace): the super-resolution tutorial's shape

Each (the super-resolution net: TorchScript only) is exported twice with a dynamic batch axis: TorchScript (`torch.onnx.export(...,
dynamo=False, dynamic_axes=...)`: Shape/Gather/Unsqueeze/Concat/Reshape for the view,
BatchNormalization nodes) and dynamo (`dynamo=True, dynamic_shapes=...`: the exporter
folds Sign(w) and BatchNorm into the Conv / Gemm weights, s_c * sign(w), and a bias).
`<name>.refs.npz` holds `inputs` (100 frames) and onnxruntime's `outputs` on them
(batch 100 through the dynamic axis). index.json gets one entry per model.

Usage (needs the `export` extra: torch):
    python scripts/make_tutorial_models.py [--out tests/fixtures]
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures"
N_REFS = 100
INPUT_SCALE = 1.0 / 256


def build(kind: str, seed: int):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(seed)

    from torch_sign import SignSTE                  # weights: torch.sign, STE backward

    class WhereSign(torch.autograd.Function):        # activations: sign(0) = +1
        @staticmethod
        def forward(ctx, x):
            return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

        @staticmethod
        def backward(ctx, g):
            return g

    class BinLinear(nn.Linear):
        def __init__(self, i, o, first=False):
            super().__init__(i, o, bias=False)
            self.first = first

        def forward(self, x):
            if not self.first:
                x = WhereSign.apply(x)
            return F.linear(x, SignSTE.apply(self.weight))

    class BinConv(nn.Conv2d):
        def __init__(self, i, o, first=False):
            super().__init__(i, o, 3, bias=False)
            self.first = first

        def forward(self, x):
            if not self.first:
                x = WhereSign.apply(x)
            return F.conv2d(x, SignSTE.apply(self.weight))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.bn1 = BinLinear(64, 48, first=True), nn.BatchNorm1d(48)
            self.fc2, self.bn2 = BinLinear(48, 32), nn.BatchNorm1d(32)
            self.fc3, self.bn3 = BinLinear(32, 10), nn.BatchNorm1d(10)
            self.act = nn.Hardtanh()

        def forward(self, x):
            x = x.view(x.size(0), -1)
            x = self.act(self.bn1(self.fc1(x)))
            x = self.act(self.bn2(self.fc2(x)))
            return F.log_softmax(self.bn3(self.fc3(x)), dim=1)

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = BinConv(3, 16, first=True), nn.BatchNorm2d(16)
            self.c2, self.b2 = BinConv(16, 16), nn.BatchNorm2d(16)
            self.c3, self.b3 = BinConv(16, 32), nn.BatchNorm2d(32)
            self.fc, self.bfc = BinLinear(128, 10), nn.BatchNorm1d(10)
            self.act = nn.Hardtanh()

        def forward(self, x):
            x = self.act(self.b1(self.c1(x)))
            x = self.act(self.b2(F.max_pool2d(self.c2(x), 2)))   # BinaryNet's order
            x = self.act(self.b3(self.c3(x)))
            x = x.view(x.size(0), -1)
            return F.log_softmax(self.bfc(self.fc(x)), dim=1)

    class SuperRes(nn.Module):      # PyTorch's super-resolution tutorial, binarized
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = BinConv(1, 8, first=True), nn.BatchNorm2d(8)
            self.c2 = BinConv(8, 4)
            self.shuffle = nn.PixelShuffle(2)
            self.act = nn.Hardtanh()

        def forward(self, x):
            return self.shuffle(self.c2(self.act(self.b1(self.c1(x)))))

    m = {"mlp": MLP, "cnn": CNN, "sr": SuperRes}[kind]().eval()
    shape = {"mlp": (1, 8, 8), "cnn": (3, 12, 12), "sr": (1, 10, 10)}[kind]
    # BatchNorm statistics near the accumulators' spread so every sign is informative
    with torch.no_grad():
        x = torch.floor(torch.rand(64, *shape) * 256) * INPUT_SCALE
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.weight.uniform_(0.5, 1.5)
                mod.weight.mul_(torch.where(torch.rand_like(mod.weight) < 0.2, -1.0, 1.0))
                mod.bias.uniform_(-0.3, 0.3)
        m.train()
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.momentum = None
        m(x)                     # running statistics from a calibration batch
        m.eval()
    return m, shape


def export(m, shape, path: Path, dynamo: bool) -> None:
    import torch
    x = torch.zeros(2, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            batch = torch.export.Dim("batch", min=1, max=1024)
            torch.onnx.export(m, (x,), str(path), dynamo=True, input_names=["input"],
                              output_names=["output"], dynamic_shapes={"x": {0: batch}},
                              external_data=False)
        else:
            torch.onnx.export(m, (x,), str(path), dynamo=False, input_names=["input"],
                              output_names=["output"], opset_version=13,
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    model = onnx.load(str(path))
    model.producer_version = ""            # deterministic bytes across torch patch versions
    onnx.save(model, str(path))


def main(argv=None) -> int:
    import onnxruntime as ort
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    folder = a.out / "tutorial"
    folder.mkdir(parents=True, exist_ok=True)
    index_path = a.out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else []
    for seed, kind in enumerate(("mlp", "cnn", "sr")):
        m, shape = build(kind, 20261201 + seed)
        rng = np.random.default_rng(seed)
        x = (rng.integers(0, 256, (N_REFS, *shape)) * INPUT_SCALE).astype(np.float32)
        for dynamo in ((False, True) if kind != "sr" else (False,)):
            name = f"binarynet_{kind}_{'dynamo' if dynamo else 'legacy'}"
            path = folder / f"{name}.onnx"
            export(m, shape, path, dynamo)
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
            np.savez_compressed(folder / f"{name}.refs.npz", inputs=x, outputs=y)
            entry = {"name": name, "model": f"tutorial/{name}.onnx",
                     "refs": f"tutorial/{name}.refs.npz", "family": "tutorial",
                     "output_kind": "logits" if kind != "sr" else "activations",
                     "input_type": "UINT8",
                     "input_scale": INPUT_SCALE}
            index = [e for e in index if e["name"] != name] + [entry]
            print(f"{name}: {path.stat().st_size} bytes, ops "
                  f"{sorted({n.op_type for n in onnx.load(str(path)).graph.node})}")
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
