#!/usr/bin/python3
"""Per-class logit offsets chosen on the training split (prior calibration).

    /usr/bin/python3 model/train/calib.py MODEL(.pt|.fpw) --data DATA/celebamask-mini \
        --out OUT.fpw [--images 300] [--size 128] [--json OFFSETS.json]

Class-weighted training leaves the rare parts (necklace, earrings, hat) under-
predicted: their F1 is limited by recall. This finds one offset per class,
added to the output layer's bias, that maximises the mean F1 (18) of the
model's labels over the first --images photos of the *training* split
(predicted at --size x --size, 128 unless told, and compared with the mask at
those pixel centres), by
coordinate ascent over a grid of offsets, two rounds. The val split is not
read. The offsets go into the bias, so the engine needs no change.
"""
import argparse
import json
import os

import numpy as np
import torch

from data import eval_inputs, load_split
from eval import load_checkpoint, scores
from export import write_fpw
from fpliif import NUM_CLASSES, predict_logits

GRID = [x / 4 for x in range(-8, 17)]  # -2 .. 4 in steps of 0.25


def mean_f1(pred, gt, k=NUM_CLASSES):
    """eval.py's mean F1 (18), the confusion matrix counted in torch."""
    conf = torch.bincount(gt * k + pred, minlength=k * k).reshape(k, k)
    return scores(conf.numpy())["mean_f1"]


@torch.no_grad()
def train_logits(model, imgs, masks, res, out=128, batch=8):
    ls, gs = [], []
    for i in range(0, len(imgs), batch):
        x = eval_inputs(imgs[i:i + batch], res)
        lg = predict_logits(model, x, out, out)  # (B, K, out, out)
        ls.append(lg.permute(0, 2, 3, 1).reshape(-1, NUM_CLASSES).half())
        step = masks.shape[1] // out
        g = masks[i:i + batch, step // 2::step, step // 2::step]
        gs.append(torch.from_numpy(g.astype(np.int64)).reshape(-1))
    return torch.cat(ls).float(), torch.cat(gs)


def search(logits, gt, rounds=2):
    off = torch.zeros(NUM_CLASSES)
    best = mean_f1((logits + off).argmax(1), gt)
    start = best
    for _ in range(rounds):
        for c in range(1, NUM_CLASSES):
            keep = off[c].item()
            for v in GRID:
                off[c] = v
                f = mean_f1((logits + off).argmax(1), gt)
                if f > best + 1e-5:
                    best, keep = f, v
            off[c] = keep
    return off, start, best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--data", required=True, help="celebamask-mini directory")
    ap.add_argument("--out", required=True, help="weights file to write")
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--size", type=int, default=128,
                    help="output size the labels are compared at (a divisor of the masks' 512)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, _ = load_checkpoint(a.model)
    model.eval()
    imgs, masks, _ = load_split(os.path.join(a.data, "train"))
    if masks.shape[1] % a.size:
        ap.error(f"--size {a.size} does not divide the masks' {masks.shape[1]}")
    logits, gt = train_logits(model, imgs[:a.images], masks[:a.images], a.res, a.size)
    off, f0, f1 = search(logits, gt)
    print(f"train mean F1 (18) at {a.size}: {f0:.4f} -> {f1:.4f}")
    print("offsets", [round(v, 2) for v in off.tolist()])
    with torch.no_grad():
        model.out.bias += off
    write_fpw(model, a.out)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(model=a.model, images=a.images, size=a.size, train_f1_before=f0,
                           train_f1_after=f1, offsets=off.tolist()), f, indent=1)


if __name__ == "__main__":
    main()
