#!/usr/bin/python3
"""Export an FP-LIIF checkpoint to the C engine's weights file (FORMAT.md),
to ONNX, and to a golden test fixture.

    /usr/bin/python3 model/train/export.py CKPT -o model/weights/rt.fpw \
        [--onnx OUT.onnx] [--golden OUT.bin]
"""
import argparse
import struct
import zlib

import numpy as np
import torch

from eval import load_checkpoint
from fpliif import CLASS_NAMES, MEAN, STD, NUM_CLASSES, FPLIIF, grid_coords

TINY = dict(head_stride=2, chans=(8, 12, 16), blocks=(1, 2, 1), red_hidden=24,
            red_out=8, mlp_hidden=16, mlp_layers=2)

MAGIC = b"FPLIIF\r\n"
VERSION = 1
HEADER = 256
ENTRY = 96
RES_TRAIN, RES_MIN, RES_MAX = 128, 96, 256


def align(n, a=64):
    return (n + a - 1) // a * a


def header(cfg, ntensors, names_off, table_off):
    h = struct.pack("<8sII", MAGIC, VERSION, HEADER)
    h += struct.pack("<QI", 0, 0)  # file size and CRC, filled in last
    h += struct.pack("<IIIII", NUM_CLASSES, RES_TRAIN, RES_MIN, RES_MAX, cfg["head_stride"])
    h += struct.pack("<3I3I", *cfg["chans"], *cfg["blocks"])
    h += struct.pack("<IIII", cfg["red_hidden"], cfg["red_out"], cfg["mlp_hidden"], cfg["mlp_layers"])
    h += struct.pack("<3f3f", *MEAN, *STD)
    h += struct.pack("<IIII", ntensors, names_off, table_off, int(cfg.get("skip", False)))
    assert len(h) == 128
    return h + bytes(HEADER - len(h))


def write_fpw(model, path):
    sd = {k: v.detach().float().contiguous().numpy() for k, v in model.state_dict().items()}
    names_off = HEADER
    table_off = names_off + 16 * NUM_CLASSES
    off = align(table_off + ENTRY * len(sd))
    table, blobs = b"", []
    for name, a in sd.items():
        if len(name) >= 56 or a.ndim > 4:
            raise ValueError(f"{name}: cannot be stored")
        shape = list(a.shape) + [1] * (4 - a.ndim)
        data = a.astype("<f4").tobytes()
        table += struct.pack("<56sII4IQQ", name.encode(), 0, a.ndim, *shape, off, len(data))
        blobs.append((off, data))
        off = align(off + len(data))
    buf = bytearray(off)
    buf[:HEADER] = header(model.cfg, len(sd), names_off, table_off)
    for i, n in enumerate(CLASS_NAMES):
        buf[names_off + 16 * i:names_off + 16 * (i + 1)] = n.encode().ljust(16, b"\0")
    buf[table_off:table_off + len(table)] = table
    for o, data in blobs:
        buf[o:o + len(data)] = data
    struct.pack_into("<Q", buf, 16, len(buf))
    struct.pack_into("<I", buf, 24, zlib.crc32(bytes(buf)) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(buf)
    return len(buf)


class Dense(torch.nn.Module):
    """image (1, 3, S, S) -> logits (1, K, H, W) for the ONNX export."""

    def __init__(self, model, h, w):
        super().__init__()
        self.model = model
        self.register_buffer("q", grid_coords(h, w))
        self.h, self.w = h, w

    def forward(self, x):
        feats = self.model.encode(x)
        out = self.model.decode(feats, self.q.expand(x.shape[0], -1, -1))
        return out.transpose(1, 2).reshape(x.shape[0], -1, self.h, self.w)


def write_onnx(model, path, res_in, res_out):
    x = torch.zeros(1, 3, res_in, res_in)
    torch.onnx.export(Dense(model, res_out, res_out).eval(), x, path, opset_version=16,
                      input_names=["image"], output_names=["logits"])


def write_golden(model, path, res_in, nq, seed=7):
    """A fixture for the C tests: input, query points and expected logits.

    Layout (little-endian): u32 res_in, u32 nq, u32 K; f32 input (3, res, res)
    normalised; f32 queries (nq, 2) as (x, y); f32 logits (nq, K).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, res_in, res_in, generator=g) * 0.6
    q = torch.rand(1, nq, 2, generator=g) * 2.2 - 1.1  # a few outside [-1, 1]
    with torch.no_grad():
        logits = model(x, q)[0]
    with open(path, "wb") as f:
        f.write(struct.pack("<III", res_in, nq, NUM_CLASSES))
        f.write(x.numpy().astype("<f4").tobytes())
        f.write(q[0].numpy().astype("<f4").tobytes())
        f.write(logits.numpy().astype("<f4").tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="a train.py checkpoint, or 'tiny' / 'tiny-skip'")
    ap.add_argument("-o", "--output", required=True, help="weights file (.fpw)")
    ap.add_argument("--onnx", help="also write an ONNX model (dense decoding)")
    ap.add_argument("--onnx-res", type=int, nargs=2, default=(128, 128), metavar=("IN", "OUT"))
    ap.add_argument("--golden", help="also write a golden fixture for the C tests")
    ap.add_argument("--golden-res", type=int, default=96)
    a = ap.parse_args()
    if a.checkpoint in ("tiny", "tiny-skip"):
        # A small random network for the C tests' fixtures (no training).
        torch.manual_seed(0)
        model = FPLIIF(**TINY, skip=a.checkpoint == "tiny-skip")
    else:
        model, _ = load_checkpoint(a.checkpoint)
    model.eval()
    n = write_fpw(model, a.output)
    print(f"{a.output}: {n} bytes")
    if a.onnx:
        write_onnx(model, a.onnx, *a.onnx_res)
    if a.golden:
        write_golden(model, a.golden, a.golden_res, 512)


if __name__ == "__main__":
    main()
