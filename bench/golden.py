"""Frames/s of bnncc's golden model and of the qonnx executor on the same 200 CNV-w1a1
inputs, measured in the same run. Outputs of both are compared too.

    python bench/golden.py [--model M] [--frames 200] [--qonnx-frames 200]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "tests", "fixtures", "brevitas", "cnv_1w1a.onnx")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    from bnncc import api

    rng = np.random.default_rng(0)
    shape = api.load(args.model).input_shape[1:]
    x = rng.uniform(-1, 1, (args.frames,) + tuple(shape)).astype(np.float32)

    design = api.load(args.model)
    design.run(x[:8])                       # warm-up (builds the popcount kernel once)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        y = design.run(x)
        times.append(time.perf_counter() - t)
    golden_fps = args.frames / statistics.median(times)

    model = cleanup_model(ModelWrapper(args.model))
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    t = time.perf_counter()
    ref = np.concatenate([execute_onnx(model, {iname: x[i:i + 1]})[oname]
                          for i in range(args.frames)])
    qonnx_fps = args.frames / (time.perf_counter() - t)

    same = np.array_equal(np.argmax(y, -1), np.argmax(ref.reshape(y.shape), -1))
    err = float(np.max(np.abs(y - ref.reshape(y.shape))))
    print(f"model: {os.path.basename(args.model)}, {args.frames} frames")
    print(f"bnncc golden : {golden_fps:10.1f} frames/s (median of {args.repeats} runs)")
    print(f"qonnx exec   : {qonnx_fps:10.1f} frames/s (one pass, batch 1 per call)")
    print(f"speed-up     : {golden_fps / qonnx_fps:10.1f}x")
    print(f"outputs      : argmax identical={same}, max |diff|={err:.3g}")


if __name__ == "__main__":
    main()
