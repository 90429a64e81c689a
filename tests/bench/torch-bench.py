#!/usr/bin/python3
"""PyTorch timing of the network in a weights file (dense decoding), for peers.

    torch-bench.py --model W.fpw --input IN.f32 --res R --out O [--threads T]
                   [--warmup N] [--iters N] [--labels OUT.u8]
    torch-bench.py --model W.fpw --export-onnx OUT.onnx --res R --out O

IN.f32 is the normalised input, float32 planar RGB (3, R, R). Prints one JSON
line; --labels writes the argmax labels (O x O bytes). --export-onnx writes
the same network as ONNX (export.py's write_onnx) and exits.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in model/train
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "model" / "train"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fpliif import grid_coords  # noqa: E402
from fpw import read_fpw  # noqa: E402


def p50(times):
    s = sorted(times)
    return s[int(0.5 * (len(s) - 1) + 0.5)]


def blas_in_use():
    """The BLAS library mapped into this process (after a matmul)."""
    a = torch.ones(64, 64)
    a @ a
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line}
    if any("openblas" in p for p in libs):
        return "openblas"
    if any("/blas/libblas" in p for p in libs):
        return "reference"
    return "unknown (" + ", ".join(sorted(libs)) + ")" if libs else "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--input")
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--out", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--labels")
    ap.add_argument("--export-onnx", metavar="PATH")
    a = ap.parse_args()

    model, _ = read_fpw(a.model)
    if a.export_onnx:
        from export import write_onnx
        write_onnx(model, a.export_onnx, a.res, a.out)
        return
    if not a.input:
        ap.error("--input is needed")

    torch.set_num_threads(a.threads)
    blas = blas_in_use()
    if blas == "reference":
        print("torch-bench: warning: libblas.so.3 is the reference BLAS, PyTorch's linear "
              "layers run slowly; install libopenblas0-pthread", file=sys.stderr)
    elif blas != "openblas":
        print(f"torch-bench: warning: BLAS library: {blas}", file=sys.stderr)

    x = np.fromfile(a.input, dtype="<f4")
    if x.size != 3 * a.res * a.res:
        sys.exit(f"torch-bench: {a.input}: {x.size} floats, not 3 x {a.res} x {a.res}")
    x = torch.from_numpy(x.reshape(1, 3, a.res, a.res).copy())
    q = grid_coords(a.out, a.out)
    times = []
    with torch.inference_mode():
        for i in range(a.warmup + a.iters):
            t0 = time.perf_counter()
            logits = model.decode(model.encode(x), q)  # (1, O * O, K)
            ms = (time.perf_counter() - t0) * 1e3
            if i >= a.warmup:
                times.append(ms)
    if a.labels:
        logits[0].argmax(dim=1).to(torch.uint8).numpy().tofile(a.labels)
    print(json.dumps({"engine": "pytorch", "version": torch.__version__, "res": a.res,
                      "out": a.out, "threads": a.threads, "ms_p50": round(p50(times), 3),
                      "blas": blas}))


if __name__ == "__main__":
    main()
