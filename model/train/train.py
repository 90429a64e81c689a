#!/usr/bin/python3
"""Train an FP-LIIF variant on CelebAMask-mini, on the CPU.

    /usr/bin/python3 model/train/train.py --variant rt --data DATA/celebamask-mini \
        --out runs/rt [--epochs 120] [--resume]

Every epoch writes OUT/last.pt (model, optimiser, RNG states: --resume goes
on from it exactly) and appends a line to OUT/log.jsonl; every --val-every
epochs the val split is scored by eval.py's protocol and OUT/best.pt keeps
the best model by the mean of the 18-class and face-10 F1. The val split is
used for choosing a model only, never for training.
"""
import argparse
import copy
import json
import math
import os
import random
import re
import time

import numpy as np
import torch
import torch.nn.functional as F

from data import IGNORE, TrainSet, class_weights, flip_lut, load_split
from eval import evaluate, load_checkpoint
from fpliif import NUM_CLASSES, VARIANTS, FPLIIF, count_params


def dice_loss(logits, y, k):
    """Soft Dice over the query points, mean over classes present in y."""
    p = logits.softmax(-1)
    onehot = F.one_hot(y, k).float()
    inter = (p * onehot).sum(0)
    denom = p.sum(0) + onehot.sum(0)
    present = onehot.sum(0) > 0
    d = 1 - (2 * inter + 1) / (denom + 1)
    return d[present].mean()


def lovasz_grad(fg_sorted):
    """Gradient of the Lovasz extension of the Jaccard loss at sorted errors."""
    gts = fg_sorted.sum()
    inter = gts - fg_sorted.cumsum(0)
    union = gts + (1 - fg_sorted).cumsum(0)
    jac = 1 - inter / union
    jac[1:] = jac[1:] - jac[:-1].clone()
    return jac


def lovasz_loss(logits, y, k):
    """Lovasz-softmax (Berman et al., 2018) over the query points, mean over
    the classes present in y: a surrogate of each class's IoU."""
    p = logits.softmax(-1)
    losses = []
    for c in torch.unique(y).tolist():
        fg = (y == c).float()
        err, order = (fg - p[:, c]).abs().sort(descending=True)
        losses.append(torch.dot(err, lovasz_grad(fg[order])))
    return torch.stack(losses).mean()


def weighted_ce(logits, y, class_w, point_w):
    """Class-weighted CE with a weight per query point, normalised like
    F.cross_entropy(weight=...): by the sum of the weights."""
    ce = F.cross_entropy(logits, y, weight=class_w, reduction="none")
    return (ce * point_w).sum() / (class_w[y] * point_w).sum()


@torch.no_grad()
def mirrored_teacher(teacher, x, q):
    """The teacher's softmax at the query points, averaged with its softmax
    on the mirrored input at the mirrored points (left and right classes
    swapped back): what eval.py --mirror scores, as soft targets."""
    p = teacher(x, q).float().softmax(-1)
    pm = teacher(x.flip(3), q * torch.tensor([-1.0, 1.0])).float().softmax(-1)
    return (p + pm[..., flip_lut(p.shape[-1])]) / 2


def distil_loss(logits, soft):
    """KL(soft || softmax(logits)), mean over the query points."""
    logp = logits.log_softmax(-1)
    return (soft * (soft.clamp(min=1e-8).log() - logp)).sum(-1).mean()


@torch.no_grad()
def update_ema(ema, model, decay):
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)


def lr_at(step, total, base, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_state(ds):
    return dict(torch=torch.get_rng_state(), gen=ds.gen.get_state(),
                np=ds.rng.bit_generator.state, py=random.getstate())


def set_rng_state(ds, st):
    torch.set_rng_state(st["torch"])
    ds.gen.set_state(st["gen"])
    ds.rng.bit_generator.state = st["np"]
    random.setstate(st["py"])


BLOCK_CONV = re.compile(r"g\d\.blocks\.\d+\.conv([12])\.")


def init_from(model, path):
    """Load a checkpoint (.pt, or a weights file .fpw) into a model that may
    take more pixel-MLP inputs or have more res-blocks a group: the extra
    columns of mlp.0 are zero and so is the second conv of each added block
    (the block is the identity), so the start is the old network."""
    src = load_checkpoint(path)[0].state_dict()
    dst = model.state_dict()
    for k, v in src.items():
        if k not in dst:
            raise SystemExit(f"--init {path}: {k} is not in this variant")
        if k == "mlp.0.weight" and v.shape[1] < dst[k].shape[1]:
            w = torch.zeros_like(dst[k])
            w[:, :v.shape[1]] = v
            v = w
        if v.shape != dst[k].shape:
            raise SystemExit(f"--init {path}: {k} is {tuple(v.shape)}, "
                             f"this variant needs {tuple(dst[k].shape)}")
        dst[k] = v
    blocks = 0
    for k in (k for k in dst if k not in src):
        conv = BLOCK_CONV.match(k)
        if not conv:
            raise SystemExit(f"--init {path}: has no {k}, and it is not part of an added block")
        if conv.group(1) == "2":
            dst[k] = torch.zeros_like(dst[k])
            blocks += k.endswith(".weight")
    model.load_state_dict(dst)
    return blocks


def repeat_factors(masks, thresh):
    """LVIS's repeat-factor sampling (Gupta et al., 2019): an image is drawn
    max(1, sqrt(thresh / f)) times as often as before, f being the fraction of
    images holding its rarest class."""
    present = np.stack([np.bincount(m.reshape(-1), minlength=NUM_CLASSES)[:NUM_CLASSES] > 0
                        for m in masks])
    frac = np.maximum(present.mean(axis=0), 1e-9)
    r = np.maximum(1.0, np.sqrt(thresh / frac))
    return torch.tensor([r[p].max() for p in present], dtype=torch.float64)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="rt")
    ap.add_argument("--data", required=True, help="celebamask-mini directory")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--queries", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--dice", type=float, default=1.0, help="weight of the Dice term")
    ap.add_argument("--lovasz", type=float, default=0.0,
                    help="weight of the Lovasz-softmax term")
    ap.add_argument("--boundary", type=float, default=0.0,
                    help="extra CE weight of query points on a part border (0: plain CE)")
    ap.add_argument("--val-every", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-bf16", action="store_true",
                    help="fp32 forward pass (the default where the CPU has no native bf16)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--repeat", type=float, default=0.0, metavar="T",
                    help="repeat-factor sampling: images of classes held by fewer "
                         "than a fraction T of the images are drawn more often")
    ap.add_argument("--keep-from", type=int, default=0, metavar="E",
                    help="also keep OUT/epN.pt, the checkpoint of each epoch N >= E "
                         "(for average.py)")
    ap.add_argument("--clean", type=float, default=0.0, metavar="P",
                    help="share of the images trained on as the portraits are framed "
                         "(scale 0.95-1.05, rotation up to 5 degrees, shift up to 5 %%) "
                         "and without the photometric steps")
    ap.add_argument("--extra", action="append", default=[],
                    help="a pseudo-labelled split (pseudo.py: images/, masks/ with 255 "
                    "ignored) trained on beside the real one; repeatable")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="keep an exponential moving average of the weights with this "
                    "decay a step; it is what is scored and saved as best.pt")
    ap.add_argument("--teacher", help="distil from this checkpoint run on the input and on "
                    "its mirror image (soft targets at the query points)")
    ap.add_argument("--distil", type=float, default=1.0, help="weight of the --teacher term")
    ap.add_argument("--init", help="start from this checkpoint's weights (fresh optimiser "
                    "and schedule); inputs the variant adds to mlp.0 start at zero")
    return ap.parse_args()


def native_bf16():
    """Whether the CPU computes bf16 itself (avx512_bf16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return True
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def main():
    a = parse_args()
    if not a.no_bf16 and not native_bf16():
        # emulated, bf16 autocast made an epoch over 10 times slower than fp32
        print("no avx512_bf16 or amx_bf16 on this CPU: fp32 forward pass", flush=True)
        a.no_bf16 = True
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    np.random.seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    ds = TrainSet(os.path.join(a.data, "train"), queries=a.queries, seed=a.seed,
                  extra=a.extra, clean=a.clean)
    vimgs, vmasks, _ = load_split(os.path.join(a.data, "val"))
    weights = class_weights(ds.class_masks)
    model = FPLIIF(**VARIANTS[a.variant])
    if a.init and not (a.resume and os.path.exists(os.path.join(a.out, "last.pt"))):
        added = init_from(model, a.init)
        print(f"initialised from {a.init}" + (f", {added} blocks added as identities" if added else ""),
              flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
    teacher = load_checkpoint(a.teacher)[0].eval() if a.teacher else None
    ema = copy.deepcopy(model).eval() if a.ema > 0 else None
    draw = None
    if a.repeat > 0:
        draw = torch.cat([repeat_factors(ds.class_masks, a.repeat),
                          torch.ones(len(ds) - ds.real, dtype=torch.float64)])
        print(f"repeat factors: {int((draw > 1).sum())} images drawn more often, "
              f"up to {float(draw.max()):.2f}x", flush=True)
    steps_per_epoch = len(ds) // a.batch
    total = steps_per_epoch * a.epochs
    epoch, best = 0, -1.0
    last = os.path.join(a.out, "last.pt")
    if a.resume and os.path.exists(last):
        ck = torch.load(last, map_location="cpu")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        set_rng_state(ds, ck["rng"])
        if ema is not None:
            ema.load_state_dict(ck.get("ema", ck["model"]))
        epoch, best = ck["epoch"], ck["best"]
        print(f"resumed from {last} at epoch {epoch}", flush=True)
    print(f"variant {a.variant}: {count_params(model)} parameters, {len(ds)} images "
          f"({ds.real} labelled), {steps_per_epoch} steps/epoch, class weights {weights.numpy().round(2).tolist()}",
          flush=True)
    log = open(os.path.join(a.out, "log.jsonl"), "a")
    while epoch < a.epochs:
        model.train()
        t0, tot, n = time.time(), 0.0, 0
        if draw is None:
            perm = torch.randperm(len(ds), generator=ds.gen)
        else:
            perm = torch.multinomial(draw, len(ds), replacement=True, generator=ds.gen)
        for s in range(steps_per_epoch):
            step = epoch * steps_per_epoch + s
            for grp in opt.param_groups:
                grp["lr"] = lr_at(step, total, a.lr, warmup=2 * steps_per_epoch)
            x, q, y, edge = ds.batch(perm[s * a.batch:(s + 1) * a.batch])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not a.no_bf16):
                logits = model(x, q)
            logits = logits.float().reshape(-1, logits.shape[-1])
            y, edge = y.reshape(-1), edge.reshape(-1)
            keep = y != IGNORE
            soft = None
            if teacher is not None:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not a.no_bf16):
                    soft = mirrored_teacher(teacher, x, q).reshape(-1, logits.shape[-1])[keep]
            logits, y, edge = logits[keep], y[keep], edge[keep]
            loss = weighted_ce(logits, y, weights, 1 + a.boundary * edge.float())
            if a.dice > 0:
                loss = loss + a.dice * dice_loss(logits, y, logits.shape[-1])
            if a.lovasz > 0:
                loss = loss + a.lovasz * lovasz_loss(logits, y, logits.shape[-1])
            if soft is not None:
                loss = loss + a.distil * distil_loss(logits, soft)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
            opt.step()
            if ema is not None:
                update_ema(ema, model, a.ema)
            tot, n = tot + loss.item(), n + 1
        epoch += 1
        rec = dict(epoch=epoch, loss=tot / n, lr=opt.param_groups[0]["lr"],
                   train_s=round(time.time() - t0, 1))
        if epoch % a.val_every == 0 or epoch == a.epochs:
            t1 = time.time()
            scored = model if ema is None else ema
            r = evaluate(scored, vimgs, vmasks, res=128, bf16=not a.no_bf16)
            rec.update(val_f1=round(r["mean_f1"], 4), val_f1_face10=round(r["mean_f1_face10"], 4),
                       val_s=round(time.time() - t1, 1))
            score = (r["mean_f1"] + r["mean_f1_face10"]) / 2
            if score > best:
                best = score
                save_atomic(dict(cfg=model.cfg, model=scored.state_dict(), epoch=epoch,
                                 val=r, args=vars(a)), os.path.join(a.out, "best.pt"))
        ck = dict(cfg=model.cfg, model=model.state_dict(), opt=opt.state_dict(),
                  rng=rng_state(ds), epoch=epoch, best=best, args=vars(a))
        if ema is not None:
            ck["ema"] = ema.state_dict()
        save_atomic(ck, last)
        if a.keep_from and epoch >= a.keep_from:
            save_atomic(ck, os.path.join(a.out, f"ep{epoch}.pt"))
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
