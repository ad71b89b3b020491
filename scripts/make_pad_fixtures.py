"""Fixtures for zero padding over binarized activations (issue 19), in tests/fixtures/padded/.

  bnn_tutorial_pads1   a BinaryNet-style CNN written the way PyTorch BNN tutorials write it
                       (float weights with a straight-through sign in the graph, Conv ->
                       [MaxPool] -> BatchNorm -> Hardtanh -> Sign, pads 1 on every conv),
                       exported by torch.onnx (TorchScript exporter, static batch,
                       torch.flatten). Needs torch (the `export` extra).
  bnn_stride2_pads1    a stack of binary 3x3 convs with stride 2 and pads 1 (torch too).
  larq_pad_plus1       a Larq-style graph: an explicit Pad with value +1 before each binary
                       conv (Larq's pad_values=1), built with onnx.helper (no torch).

The last layer of each is a binarized fully connected layer without scale or bias, so the
outputs are integers and bnncc must reproduce onnxruntime's outputs exactly. References
are onnxruntime's outputs on seeded random inputs in [-1, 1).

    python scripts/make_pad_fixtures.py [--only larq_pad_plus1,...]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures"
SUB = "padded"
N_FRAMES = 16


def ort_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def inputs(seed: int, shape) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-1024, 1024, size=(N_FRAMES,) + tuple(shape)) / 1024.0
    x[x == 0] = 1 / 1024          # Sign(0) = 0: keep the input binarization bipolar
    return x.astype(np.float32)


# ------------------------------------------------------------------------------ torch
def torch_models():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from torch_sign import SignSTE as BinSign

    class BinConv2d(nn.Conv2d):
        def forward(self, x):
            return F.conv2d(x, BinSign.apply(self.weight), None, self.stride, self.padding)

    class BinLinear(nn.Linear):
        def forward(self, x):
            return F.linear(x, BinSign.apply(self.weight))

    def block(cin, cout, stride=1, pool=False):
        layers = [BinConv2d(cin, cout, 3, stride=stride, padding=1, bias=False)]
        if pool:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.BatchNorm2d(cout), nn.Hardtanh()]
        return layers

    class Net(nn.Module):
        def __init__(self, body, feats, classes=10):
            super().__init__()
            self.body = nn.ModuleList(body)
            self.fc = BinLinear(feats, classes, bias=False)

        def forward(self, x):
            x = BinSign.apply(x)
            for m in self.body:
                x = m(x)
                if isinstance(m, nn.Hardtanh):
                    x = BinSign.apply(x)
            return self.fc(torch.flatten(x, 1))

    tutorial = Net(block(3, 16) + block(16, 16, pool=True) + block(16, 32) +
                   block(32, 32, pool=True), 32 * 3 * 3)
    stride2 = Net(block(3, 8, 2) + block(8, 16, 2) + block(16, 16, 2), 16 * 2 * 2)
    return torch, {"bnn_tutorial_pads1": (tutorial, (3, 12, 12)),
                   "bnn_stride2_pads1": (stride2, (3, 16, 16))}


def export_torch(name: str, torch, model, shape, seed: int) -> tuple[Path, np.ndarray]:
    torch.manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "weight") and m.weight is not None and m.weight.dim() > 1:
            torch.nn.init.normal_(m.weight)
    model.train()
    with torch.no_grad():                 # BatchNorm statistics of the data it will see
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
                torch.nn.init.uniform_(m.weight, 0.5, 1.5)
                torch.nn.init.uniform_(m.bias, -0.3, 0.3)
                m.weight[0] = -m.weight[0]            # a negative gamma: a flipped channel
        calib = torch.from_numpy(inputs(seed + 1, shape)).repeat(4, 1, 1, 1)
        model(calib)
    model.eval()
    path = OUT / SUB / f"{name}.onnx"
    torch.onnx.export(model, torch.from_numpy(inputs(seed, shape)[:1]), str(path),
                      input_names=["x"], output_names=["y"], opset_version=13, dynamo=False)
    return path, inputs(seed, shape)


# ------------------------------------------------------------------------------ larq
def larq_model(path: Path, seed: int) -> np.ndarray:
    """Sign -> [Pad(+1) -> Conv(Sign(w)) -> BatchNorm -> Sign] x 3 -> Flatten -> MatMul."""
    rng = np.random.default_rng(seed)
    inits, nodes, shape = [], [], (1, 3, 10, 10)
    c = lambda n, v: inits.append(numpy_helper.from_array(np.asarray(v), n)) or n
    nodes.append(helper.make_node("Sign", ["x"], ["a0"], name="input_sign"))
    cur, (_, ch, h, w) = "a0", shape
    for i, (cout, stride) in enumerate(((8, 1), (16, 2), (16, 1))):
        pads = c(f"pads{i}", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))
        one = c(f"one{i}", np.array(1.0, np.float32))
        nodes.append(helper.make_node("Pad", [cur, pads, one], [f"p{i}"], name=f"pad{i}",
                                      mode="constant"))
        wf = c(f"w{i}", rng.normal(size=(cout, ch, 3, 3)).astype(np.float32))
        nodes.append(helper.make_node("Sign", [wf], [f"wb{i}"], name=f"wsign{i}"))
        nodes.append(helper.make_node("Conv", [f"p{i}", f"wb{i}"], [f"c{i}"], name=f"conv{i}",
                                      kernel_shape=[3, 3], strides=[stride, stride]))
        h, w = (h + 2 - 3) // stride + 1, (w + 2 - 3) // stride + 1
        k = 9 * ch
        bn = [c(f"bn{i}_{n}", v.astype(np.float32)) for n, v in (
            ("g", rng.uniform(0.5, 1.5, cout) * np.where(np.arange(cout) == 0, -1, 1)),
            ("b", rng.uniform(-0.3, 0.3, cout)),
            ("m", rng.normal(0, 0.3 * np.sqrt(k), cout) + 0.123),
            ("v", rng.uniform(0.5, 1.5, cout) * k))]
        nodes.append(helper.make_node("BatchNormalization", [f"c{i}"] + bn, [f"n{i}"],
                                      name=f"bn{i}", epsilon=1e-5))
        nodes.append(helper.make_node("Sign", [f"n{i}"], [f"a{i + 1}"], name=f"sign{i}"))
        cur, ch = f"a{i + 1}", cout
    nodes.append(helper.make_node("Flatten", [cur], ["f"], name="flatten", axis=1))
    wfc = c("wfc", rng.normal(size=(ch * h * w, 10)).astype(np.float32))
    nodes.append(helper.make_node("Sign", [wfc], ["wfcb"], name="wfc_sign"))
    nodes.append(helper.make_node("MatMul", ["f", "wfcb"], ["y"], name="fc"))
    g = helper.make_graph(nodes, "larq_pad_plus1",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="bnncc scripts/make_pad_fixtures.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return inputs(seed, shape[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated fixture names")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    (OUT / SUB).mkdir(parents=True, exist_ok=True)
    index_path = OUT / "index.json"
    index = json.loads(index_path.read_text())
    made = {}
    if not only or only & {"larq_pad_plus1"}:
        p = OUT / SUB / "larq_pad_plus1.onnx"
        made["larq_pad_plus1"] = (p, larq_model(p, 1901))
    want_torch = {"bnn_tutorial_pads1", "bnn_stride2_pads1"}
    if not only or only & want_torch:
        torch, models = torch_models()
        for i, (name, (model, shape)) in enumerate(models.items()):
            if not only or name in only:
                made[name] = export_torch(name, torch, model, shape, 1910 + i)
    for name, (path, x) in made.items():
        y = ort_outputs(path, x)
        assert np.array_equal(y, np.round(y)), f"{name}: outputs are not integers"
        refs = OUT / SUB / f"{name}.refs.npz"
        np.savez(refs, inputs=x, outputs=y)
        entry = {"name": name, "model": f"{SUB}/{path.name}", "refs": f"{SUB}/{refs.name}",
                 "family": "padded", "output_kind": "logits"}
        index = [e for e in index if e["name"] != name] + [entry]
        print(f"{name}: {path.stat().st_size} + {refs.stat().st_size} bytes")
    index_path.write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
