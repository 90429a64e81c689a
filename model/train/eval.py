#!/usr/bin/python3
"""Evaluate an FP-LIIF checkpoint by the protocol of the papers.

Predictions at the mask size (512x512), one confusion matrix over the whole
set, F1 per class, the mean over the 18 foreground classes and over the
face-10 classes (skin, nose, eyes, brows, mouth, lips, hair).

    /usr/bin/python3 model/train/eval.py CKPT [CKPT...] --data DIR/val [--res 128] [--json]
        [--mirror] [--webcam SEED]

Several checkpoints are scored as one ensemble (their softmax averaged);
--mirror averages each with its prediction of the mirrored photo (left and
right classes swapped back). Both are measurements of what more compute
would buy; the engine runs one network once.
"""
import argparse
import json
import sys

import numpy as np
import torch

from data import eval_inputs, flip_lut, load_split, webcam_steps
from fpliif import CLASS_NAMES, NUM_CLASSES, FPLIIF, predict_logits

FACE10 = (1, 2, 4, 5, 6, 7, 10, 11, 12, 13)


def confusion(pred, gt, k=NUM_CLASSES):
    """Confusion matrix [gt, pred] of two integer label arrays."""
    idx = gt.astype(np.int64).reshape(-1) * k + pred.astype(np.int64).reshape(-1)
    return np.bincount(idx, minlength=k * k).reshape(k, k)


def scores(conf):
    tp = np.diag(conf).astype(np.float64)
    denom = conf.sum(0) + conf.sum(1)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return {
        "mean_f1": float(f1[1:].mean()),
        "mean_f1_face10": float(f1[list(FACE10)].mean()),
        "pixel_acc": float(tp.sum() / conf.sum()),
        "per_class": {n: float(v) for n, v in zip(CLASS_NAMES, f1)},
    }


def ensemble_probs(models, x, h, w, mirror):
    """Softmax (B, K, h, w) averaged over the models, and over the mirrored
    input too if asked (its left/right classes swapped back)."""
    lut = flip_lut()
    p = 0
    for m in models:
        p = p + predict_logits(m, x, h, w).softmax(1)
        if mirror:
            p = p + predict_logits(m, x.flip(3), h, w).softmax(1).flip(3)[:, lut]
    return p


@torch.no_grad()
def evaluate(model, imgs, masks, res=128, batch=4, bf16=False, webcam=None, mirror=False):
    """-> scores dict over the set; predictions at the masks' size. With a
    data.Webcam the inputs pass through its photometric steps first. A list
    of models is scored as an ensemble (ensemble_probs)."""
    models = model if isinstance(model, list) else [model]
    for m in models:
        m.eval()
    h, w = masks.shape[1:]
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for i in range(0, len(imgs), batch):
        x = eval_inputs(imgs[i:i + batch], res, webcam)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if len(models) == 1 and not mirror:
                logits = predict_logits(models[0], x, h, w)
            else:
                logits = ensemble_probs(models, x, h, w, mirror)
        pred = logits.float().argmax(1).numpy()
        conf += confusion(pred, masks[i:i + batch])
    out = scores(conf)
    out.update(images=len(imgs), res=res)
    out.update(webcam=webcam is not None, mirror=mirror, models=len(models))
    return out


def load_checkpoint(path):
    """A train.py checkpoint (.pt) or an exported weights file (.fpw)."""
    if path.endswith(".fpw"):
        from fpw import read_fpw
        model, hdr = read_fpw(path)
        return model, hdr
    ck = torch.load(path, map_location="cpu")
    model = FPLIIF(**ck["cfg"])
    model.load_state_dict(ck["model"])
    return model, ck


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", nargs="+",
                    help="train.py checkpoint (.pt) or weights file (.fpw); several: an ensemble")
    ap.add_argument("--data", required=True, help="split dir with images/ and masks/")
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--webcam", type=int, metavar="SEED",
                    help="score the photos as webcam frames: training's photometric "
                         "steps (light, colour, blur, noise, JPEG) drawn from SEED")
    ap.add_argument("--mirror", action="store_true",
                    help="average with the prediction of the mirrored photo")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    models = [load_checkpoint(c)[0] for c in a.checkpoint]
    imgs, masks, _ = load_split(a.data)
    webcam = None if a.webcam is None else webcam_steps(a.webcam)
    r = evaluate(models, imgs, masks, a.res, webcam=webcam, mirror=a.mirror)
    if a.json:
        json.dump(r, sys.stdout)
        print()
        return
    for n, v in r["per_class"].items():
        print(f"{n:12s} {v:.4f}")
    print(f"mean F1 (18)  {r['mean_f1']:.4f}\nface-10 F1    {r['mean_f1_face10']:.4f}")


if __name__ == "__main__":
    main()
