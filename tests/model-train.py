#!/usr/bin/env python3
"""Checks of model/train's helpers that the shipped weights depend on.

    model-train.py WEIGHTS
        --init into a deeper variant (train.init_from) starts from exactly
        the network it was given: added res-blocks are identities and the
        logits of WEIGHTS (an .fpw of the rt-skip shape) are reproduced;
        a variant it cannot grow into is refused; repeat_factors draws an
        image as often as its rarest class asks (LVIS's rule).
Exit 77 (skipped) when Debian's PyTorch is missing.
"""
import os
import subprocess
import sys

import pytorch_probe
from pytorch_probe import SKIP

here = os.path.dirname(os.path.abspath(__file__))
train_dir = os.path.join(here, "..", "model", "train")

CHECKS = r"""
import sys
import numpy as np
import torch
import fpliif, train
from fpw import read_fpw

weights = sys.argv[1]
old, _ = read_fpw(weights)
torch.manual_seed(3)
x = torch.randn(2, 3, 128, 128)
q = torch.rand(2, 500, 2) * 2 - 1
failed = 0

deep = fpliif.build("rt-deep")
added = train.init_from(deep, weights)
with torch.no_grad():
    diff = float((deep(x, q) - old(x, q)).abs().max())
print(f"init_from rt-deep: {added} blocks added, max logit difference {diff:.3g}")
failed += added != 6 or diff > 1e-5

try:
    train.init_from(fpliif.build("base"), weights)
    print("init_from base: accepted weights of another width")
    failed += 1
except SystemExit as e:
    print(f"init_from base: refused ({e})")

masks = np.zeros((10, 4, 4), np.uint8)
masks[:, 0, 0] = 1               # every image: background and skin
masks[0, 1, 1] = 16              # one image of ten holds a necklace
masks[1:3, 2, 2] = 14            # two hold a hat
r = train.repeat_factors(masks, 0.4).numpy()
want = np.array([2.0, np.sqrt(2.0), np.sqrt(2.0)] + [1.0] * 7)
print(f"repeat_factors: {np.round(r, 3).tolist()}")
failed += not np.allclose(r, want)
sys.exit(1 if failed else 0)
"""


def main():
    why = pytorch_probe.missing()
    if why:
        print(f"skipped: {why}")
        return SKIP
    env = dict(os.environ, PYTHONPATH=train_dir)
    return subprocess.run([pytorch_probe.PYTHON, "-c", CHECKS, sys.argv[1]], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
