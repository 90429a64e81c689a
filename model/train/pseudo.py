#!/usr/bin/python3
"""Pseudo-label photos without part masks with a trained model (self-training).

    /usr/bin/python3 model/train/pseudo.py TEACHER.fpw --images DIR [--hair DIR] \
        --out OUT [--res 128] [--min-conf 0.6]

Writes OUT/images/STEM.jpg (the photo at 512x512, JPEG quality 95) and OUT/masks/STEM.png: the
teacher's labels at 512x512 (the mean of the photo's and its mirror's
softmax), 255 (ignored by train.py) where the teacher's top probability is
below --min-conf. With --hair (celeba-hq-extra's official hair masks, 0 or
255, same stems) the hair class comes from the real mask: hair where it says
hair, and a teacher's hair outside it is ignored.
"""
import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from data import eval_inputs
from eval import ensemble_probs, load_checkpoint

IGNORE = 255
HAIR = 13


@torch.no_grad()
def teacher_probs(model, img_u8, res, out=256):
    """Softmax (K, 512, 512) of a photo, averaged with its mirror's; decoded
    at out x out and scaled up bilinearly (a quarter of the decoder's work)."""
    p = ensemble_probs([model], eval_inputs(img_u8[None], res), out, out, mirror=True)[0] / 2
    return F.interpolate(p[None], size=(512, 512), mode="bilinear", align_corners=False)[0]


def label(probs, hair_mask, min_conf):
    conf, y = probs.max(0)
    y = y.numpy().astype(np.uint8)
    y[conf.numpy() < min_conf] = IGNORE
    if hair_mask is not None:
        real = hair_mask > 127
        y[(y == HAIR) & ~real] = IGNORE
        y[real] = HAIR
    return y


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("teacher")
    ap.add_argument("--images", required=True)
    ap.add_argument("--hair")
    ap.add_argument("--out", required=True)
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--min-conf", type=float, default=0.6)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, _ = load_checkpoint(a.teacher)
    model.eval()
    os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "masks"), exist_ok=True)
    stems = sorted(os.path.splitext(n)[0] for n in os.listdir(a.images) if n.endswith(".jpg"))
    ignored = 0
    for i, s in enumerate(stems):
        src = os.path.abspath(os.path.join(a.images, s + ".jpg"))
        im = np.asarray(Image.open(src).convert("RGB").resize((512, 512), Image.BICUBIC))
        hair = None
        if a.hair:
            hp = os.path.join(a.hair, s + ".png")
            if not os.path.exists(hp):
                continue
            hair = np.asarray(Image.open(hp).convert("L").resize((512, 512), Image.NEAREST))
        y = label(teacher_probs(model, im, a.res), hair, a.min_conf)
        ignored += int((y == IGNORE).sum())
        dst = os.path.join(a.out, "images", s + ".jpg")
        Image.fromarray(im).save(dst, quality=95)
        Image.fromarray(y).save(os.path.join(a.out, "masks", s + ".png"))
        if i % 100 == 0:
            print(f"{i}/{len(stems)} {s}", flush=True)
    print(f"{len(stems)} photos, {ignored / max(1, len(stems)) / 512 / 512:.3f} of pixels ignored")


if __name__ == "__main__":
    main()
