"""Train small self-compressing networks and export them as QONNX (tests/fixtures/scn/).

Needs the optional `export` extra (torch). Each output channel c of each weight tensor
learns a bit depth b_c >= 0 and an exponent e_c (the "Self-Compressing Neural Networks"
quantizer, q(w) = 2^e * round(clamp(w / 2^e, -2^(b-1), 2^(b-1) - 1)), rounding through a
straight-through estimator; 1-bit channels are +-1, as QONNX defines them), with a loss term on the total weight bits that pushes bit
depths down; channels that reach 0 bits hold only zeros. The trained networks are
written in both QONNX forms (bnncc.testing.scn: one per-channel-width `Quant`, and one
`Quant` per width + Concat + Gather), with reference outputs from qonnx's executor on
the grouped form.

Data: the 1,000 MNIST test images with labels that ship with the QONNX model zoo's TFC
models (BSD; /work/shared/models/zoo/TFC_1W1A.refs.npz, or --mnist). Images 100-999
train, images 0-99 are the held-out references. Networks:
  scn_mlp     MNIST 784-64-32-10, 3-bit ReLU activations
  scn_digits  8x8 MNIST (28x28 averaged to 7x7, padded to 8x8), 64-24-10
  scn_cnn     MNIST conv3x3(8) - maxpool - conv3x3(12) - maxpool - fc 10
  scn_res     MNIST ResNet-like: conv3x3(8) - maxpool - two residual blocks
              relu(quant(A(x) + B(x))) with A a padded conv3x3(8), B the identity in
              the first block and a conv1x1(8) in the second - maxpool - fc 10

usage: python scripts/make_scn_fixtures.py [--mnist FILE] [--out DIR] [--epochs N]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ACT_BITS, ACT_SCALE = 3, 2.0 ** -2          # unsigned ReLU quantizer of hidden layers
IN_SCALE = 2.0 ** -8                        # pixels in [0, 1] as UINT8


def scn_quant(torch, w, b, e, axis):
    """Per-output-channel quantizer with straight-through rounding of w, b and e."""
    shape = [1] * w.dim()
    shape[axis] = w.shape[axis]
    ste = lambda t: t + (torch.round(t) - t).detach()
    bq = ste(torch.relu(b)).reshape(shape)
    s = torch.pow(2.0, ste(e)).reshape(shape)
    lo, hi = -torch.pow(2.0, bq - 1), torch.pow(2.0, bq - 1) - 1
    x = ste(torch.minimum(torch.maximum(w / s, lo), hi))
    # QONNX's signed 1-bit quantizer is +-1 (not the {-1, 0} of the formula): train as
    # the exported graph computes
    sign = torch.where(w >= 0, 1.0, -1.0)
    x = torch.where(bq == 1, sign + (w / s - (w / s).detach()), x)
    return x * s


def act_quant(torch, x):
    ste = lambda t: t + (torch.round(t) - t).detach()
    x = torch.clamp(torch.relu(x) / ACT_SCALE, 0, 2 ** ACT_BITS - 1)
    return ste(x) * ACT_SCALE


def in_quant(torch, x):
    return torch.clamp(torch.round(x / IN_SCALE), 0, 255) * IN_SCALE


class Net:
    """Layers: ("fc", out) or ("conv", out, k) and ("pool",); weights with SCN params."""

    def __init__(self, torch, spec, in_shape, seed):
        torch.manual_seed(seed)
        self.torch, self.spec, self.params = torch, spec, []
        c, shape = None, list(in_shape)
        for layer in spec:
            if layer[0] == "pool":
                shape = [shape[0], shape[1] // 2, shape[2] // 2]
                continue
            if layer[0] == "res":       # ("res", shortcut conv?): branch A 3x3 padded
                c = shape[0]
                for k in ((3, 1) if layer[1] else (3,)):
                    self.params.append(self._conv_params(torch, c, c, k))
                continue
            if layer[0] == "conv":
                co, k = layer[1], layer[2]
                w = torch.randn(co, shape[0], k, k) * (2.0 / (shape[0] * k * k)) ** 0.5
                shape = [co, shape[1] - k + 1, shape[2] - k + 1]
                axis, n = 0, co
            else:
                fan_in = int(np.prod(shape))
                w = torch.randn(fan_in, layer[1]) * (2.0 / fan_in) ** 0.5
                shape = [layer[1]]
                axis, n = 1, layer[1]
            p = {"w": w.requires_grad_(), "bias": torch.zeros(n, requires_grad=True),
                 "b": torch.full((n,), 4.0, requires_grad=True),
                 "e": torch.full((n,), -3.0, requires_grad=True), "axis": axis}
            self.params.append(p)

    @staticmethod
    def _conv_params(torch, co, ci, k):
        w = torch.randn(co, ci, k, k) * (2.0 / (ci * k * k)) ** 0.5
        return {"w": w.requires_grad_(), "bias": torch.zeros(co, requires_grad=True),
                "b": torch.full((co,), 4.0, requires_grad=True),
                "e": torch.full((co,), -3.0, requires_grad=True), "axis": 0}

    def tensors(self):
        return [t for p in self.params for t in (p["w"], p["bias"], p["b"], p["e"])]

    def forward(self, x):
        torch = self.torch
        x = in_quant(torch, x)
        it = iter(self.params)
        for i, layer in enumerate(self.spec):
            if layer[0] == "pool":
                x = torch.nn.functional.max_pool2d(x, 2)
                continue
            if layer[0] == "res":
                q = lambda p: scn_quant(torch, p["w"], p["b"], p["e"], p["axis"])
                pa = next(it)
                a = act_quant(torch, torch.nn.functional.conv2d(x, q(pa), padding=1) +
                              pa["bias"].reshape(1, -1, 1, 1))
                if layer[1]:
                    pb = next(it)
                    x = act_quant(torch, torch.nn.functional.conv2d(x, q(pb)) +
                                  pb["bias"].reshape(1, -1, 1, 1))
                x = act_quant(torch, a + x)
                continue
            p = next(it)
            wq = scn_quant(torch, p["w"], p["b"], p["e"], p["axis"])
            if layer[0] == "conv":
                x = torch.nn.functional.conv2d(x, wq) + p["bias"].reshape(1, -1, 1, 1)
            else:
                x = x.reshape(x.shape[0], -1) @ wq + p["bias"]
            if i < len(self.spec) - 1:
                x = act_quant(torch, x)
        return x

    def weight_bits(self):
        torch = self.torch
        total = 0
        for p in self.params:
            per = p["w"][0].numel() if p["axis"] == 0 else p["w"].shape[0]
            total = total + torch.relu(p["b"]).sum() * per
        return total


def train(torch, net, x, y, epochs, gamma):
    ws = [t for p in net.params for t in (p["w"], p["bias"])]
    qs = [t for p in net.params for t in (p["b"], p["e"])]
    opt = torch.optim.Adam([{"params": ws, "lr": 3e-3}, {"params": qs, "lr": 5e-2}])
    x, y = torch.tensor(x), torch.tensor(y)
    nbits0 = float(net.weight_bits().detach())
    for ep in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 50):
            idx = perm[i:i + 50]
            loss = torch.nn.functional.cross_entropy(net.forward(x[idx]), y[idx]) + \
                gamma * net.weight_bits() / nbits0
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def export(net, in_shape, name: str, form: str):
    """The trained network as QONNX (integer b_c, e_c; the float graph the QONNX ops
    compute is the network's own forward pass)."""
    from onnx import TensorProto, helper
    from bnncc.testing.scn import QONNX, ScnGraph
    G = ScnGraph(form)
    x = G.quant("x", np.float32(IN_SCALE), 8, signed=False)
    it = iter(net.params)
    shape = [1] + list(in_shape)
    act = lambda y: G.quant(G.node("Relu", [y]), np.float32(ACT_SCALE), ACT_BITS, signed=False)

    def conv(x, p, k, pad=0):
        y = G.node("Conv", [x, weight(p)], kernel_shape=[k, k], pads=[pad] * 4)
        return G.node("Add", [y, G.const(p["bias"].detach().numpy().astype(np.float32)
                                         .reshape(1, -1, 1, 1), "bias")])

    def weight(p):
        w = p["w"].detach().numpy().astype(np.float32)
        bits = np.round(np.maximum(p["b"].detach().numpy(), 0)).astype(np.int64)
        exps = np.round(p["e"].detach().numpy()).astype(np.int64)
        return G.weight(w, exps, bits, p["axis"])

    for i, layer in enumerate(net.spec):
        if layer[0] == "pool":
            x = G.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
            shape = [1, shape[1], shape[2] // 2, shape[3] // 2]
            continue
        if layer[0] == "res":
            a = act(conv(x, next(it), 3, 1))
            b = act(conv(x, next(it), 1)) if layer[1] else x
            x = act(G.node("Add", [a, b]))
            continue
        p = next(it)
        bias = p["bias"].detach().numpy().astype(np.float32)
        wq = weight(p)
        if layer[0] == "conv":
            k = layer[2]
            y = G.node("Conv", [x, wq], kernel_shape=[k, k])
            y = G.node("Add", [y, G.const(bias.reshape(1, -1, 1, 1), "bias")])
            shape = [1, layer[1], shape[2] - k + 1, shape[3] - k + 1]
        else:
            if len(shape) > 2:
                x = G.node("Flatten", [x], axis=1)
            y = G.node("MatMul", [x, wq])
            y = G.node("Add", [y, G.const(bias.reshape(1, -1), "bias")])
            shape = [1, layer[1]]
        if i < len(net.spec) - 1:
            x = G.quant(G.node("Relu", [y]), np.float32(ACT_SCALE), ACT_BITS, signed=False)
        else:
            x = y
    graph = helper.make_graph(G.nodes, name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1] + list(in_shape))],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)],
                              G.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                   helper.make_opsetid(QONNX, 1)])


def padded_constants(net) -> int:
    """Zero-bit channels of the layer in front of the first residual block whose
    constant output is not 0: the block's padded 3x3 window reads them, and its padded
    positions hold 0, so no constant shift absorbs them (bnncc.passes.prune keeps them)."""
    p = net.params[0]
    bits = np.round(np.maximum(p["b"].detach().numpy(), 0))
    bias = p["bias"].detach().numpy()
    v = np.clip(np.round(np.maximum(bias, 0) / ACT_SCALE), 0, 2 ** ACT_BITS - 1)
    return int(((bits == 0) & (v != 0)).sum())


def digits(images):
    """28x28 -> 7x7 by 4x4 averages, padded to 8x8 (a digits-sized MNIST)."""
    x = images.reshape(-1, 7, 4, 7, 4).mean((2, 4))
    return np.pad(x, ((0, 0), (0, 1), (0, 1)))[:, None].astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist", default=os.path.join(os.environ.get(
        "BNNCC_SHARED_MODELS", "/work/shared/models"), "zoo", "TFC_1W1A.refs.npz"))
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "scn"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--only", default="", help="comma-separated networks to (re)train; "
                    "the others keep their files and index entries")
    a = ap.parse_args()
    import onnx
    import torch
    from bnncc.testing.scn import qonnx_reference
    torch.set_num_threads(1)
    data = np.load(a.mnist)
    imgs, labels = data["inputs"].reshape(-1, 28, 28).astype(np.float32), data["labels"]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    nets = {
        "scn_mlp": ([("fc", 64), ("fc", 32), ("fc", 10)], imgs[:, None], (1, 28, 28), 0.6),
        "scn_digits": ([("fc", 24), ("fc", 10)], digits(imgs), (1, 8, 8), 0.6),
        "scn_cnn": ([("conv", 8, 3), ("pool",), ("conv", 12, 3), ("pool",), ("fc", 10)],
                    imgs[:, None], (1, 28, 28), 0.6),
        "scn_res": ([("conv", 8, 3), ("pool",), ("res", False), ("res", True), ("pool",),
                     ("fc", 10)], imgs[:, None], (1, 28, 28), 0.6),
    }
    only = set(a.only.split(",")) if a.only else None
    old = {f["name"]: f for f in json.loads((out / "index.json").read_text())} \
        if (out / "index.json").exists() else {}
    index = []
    for seed, (name, (spec, x, in_shape, gamma)) in enumerate(nets.items()):
        if only is not None and name not in only:
            index.append(old[name])
            continue
        net = Net(torch, spec, in_shape, seed=seed)
        train(torch, net, x[100:], labels[100:], a.epochs, gamma)
        with torch.no_grad():
            acc = float((net.forward(torch.tensor(x[:100])).argmax(1).numpy() ==
                         labels[:100]).mean())
        zero = sum(int((np.round(np.maximum(p["b"].detach().numpy(), 0)) == 0).sum())
                   for p in net.params[:-1])
        for form in ("tensor", "grouped"):
            onnx.save(export(net, in_shape, name, form), out / f"{name}_{form}.onnx")
        grouped = onnx.load(out / f"{name}_grouped.onnx")
        ref = qonnx_reference(grouped, x[:100])
        np.savez(out / f"{name}.refs.npz", inputs=x[:100], outputs=ref, labels=labels[:100])
        ref_acc = float((ref.argmax(1) == labels[:100]).mean())
        entry = {"name": name, "zero_channels": zero, "accuracy": ref_acc,
                 "torch_accuracy": acc}
        if any(layer[0] == "res" for layer in spec):
            entry["kept_through_padding"] = padded_constants(net)
        index.append(entry)
        print(f"{name}: held-out accuracy {ref_acc:.2f} (torch {acc:.2f}), "
              f"{zero} zero-bit channels before the last layer")
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
