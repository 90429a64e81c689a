#!/usr/bin/env python3
"""Checks of model/train's helpers that the shipped weights depend on.

    model-train.py WEIGHTS
        --init into a deeper variant (train.init_from) starts from exactly
        the network it was given: added res-blocks are identities and the
        logits of WEIGHTS (an .fpw of the rt-skip shape) are reproduced;
        a variant it cannot grow into is refused; repeat_factors draws an
        image as often as its rarest class asks (LVIS's rule); a --clean
        image is the photo as framed, without the photometric steps, and
        eval.py's --webcam steps depend on their seed alone; the mirrored
        teacher of --teacher is mirror-symmetric (its targets for the
        mirrored photo are its targets for the photo, mirrored and with left
        and right swapped), and the distillation term is 0 at the targets.
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
import os
import sys
import tempfile
import numpy as np
import torch
from PIL import Image
import data, fpliif, train
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

# A smooth photo, mirror-symmetric, so framing within a few per cent and a
# mirror change it little and the photometric steps a lot.
yy, xx = np.mgrid[0:512, 0:512] / 511.0
photo = np.stack([yy, np.abs(xx - 0.5) * 2, 0.5 + 0.3 * np.cos(3 * yy)], -1)
photo = (photo * 200 + 20).astype(np.uint8)
with tempfile.TemporaryDirectory() as d:
    for sub in ("images", "masks"):
        os.mkdir(os.path.join(d, sub))
    for i in range(4):
        Image.fromarray(photo).save(os.path.join(d, "images", f"{i}.jpg"), quality=95)
        Image.fromarray(np.ones((512, 512), np.uint8)).save(os.path.join(d, "masks", f"{i}.png"))
    want = data.eval_inputs(photo[None].repeat(4, 0))
    far = {}
    for clean in (0.0, 1.0):
        ds = data.TrainSet(d, queries=64, seed=4, clean=clean)
        far[clean] = float(np.mean([(ds.batch([0, 1, 2, 3])[0] - want).abs().mean()
                                    for _ in range(4)]))
print(f"TrainSet: mean distance from the photo as framed, clean 1: {far[1.0]:.3f}, "
      f"clean 0: {far[0.0]:.3f}")
failed += not (far[1.0] < 0.15 and far[0.0] > 3 * far[1.0])

x = torch.rand(3, 3, 32, 32)
a, b = data.webcam_steps(5)(x.clone()), data.webcam_steps(5)(x.clone())
c = data.webcam_steps(6)(x.clone())
print(f"webcam_steps: seed 5 twice differ by {float((a - b).abs().max()):.3g}, "
      f"seeds 5 and 6 by {float((a - c).abs().mean()):.3g}")
failed += not (torch.equal(a, b) and float((a - c).abs().mean()) > 0.01)

torch.manual_seed(5)
x, q = torch.randn(2, 3, 128, 128), torch.rand(2, 500, 2) * 2 - 1
with torch.no_grad():
    soft = train.mirrored_teacher(old, x, q)
    soft_m = train.mirrored_teacher(old, x.flip(3), q * torch.tensor([-1.0, 1.0]))
    sym = float((soft - soft_m[..., data.flip_lut()]).abs().max())
    plain = float((old(x, q).softmax(-1) - old(x.flip(3), q * torch.tensor([-1.0, 1.0]))
                   .softmax(-1)[..., data.flip_lut()]).abs().max())
    flat = soft.reshape(-1, soft.shape[-1])
    at = float(train.distil_loss(flat.log(), flat))
    off = float(train.distil_loss(torch.zeros_like(flat), flat))
print(f"mirrored_teacher: asymmetry {sym:.3g} (one pass: {plain:.3g}); "
      f"distil_loss at the targets {at:.3g}, at uniform logits {off:.3g}")
failed += not (sym < 1e-5 and plain > 0.01 and abs(at) < 1e-5 and off > 0.1)
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
