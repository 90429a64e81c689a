#!/usr/bin/python3
"""Average the weights of a run's last epochs (stochastic weight averaging).

    /usr/bin/python3 model/train/average.py RUN_DIR --first E1 --last E2 [-o RUN_DIR/avg.pt]

Reads RUN_DIR/epE.pt for E1 <= E <= E2 (the checkpoints a run started with
train.py --keep-from keeps) and writes one checkpoint whose weights are their mean, in the form
release.py reads (--checkpoint). The network has no normalisation layers,
so the mean needs no statistics recomputed. Izmailov et al. (2018): along
the low-learning-rate tail of a schedule the mean of the weights lies
nearer the centre of the basin than any one of them.
"""
import argparse
import os

import torch

from train import save_atomic


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--first", type=int, required=True)
    ap.add_argument("--last", type=int, required=True)
    ap.add_argument("-o", "--output")
    a = ap.parse_args()
    epochs = range(a.first, a.last + 1)
    if not epochs:
        raise SystemExit(f"--first {a.first} is after --last {a.last}")
    total, ck = None, None
    for e in epochs:
        path = os.path.join(a.run_dir, f"ep{e}.pt")
        if not os.path.exists(path):
            raise SystemExit(f"{path}: no checkpoint of epoch {e}")
        ck = torch.load(path, map_location="cpu")
        sd = ck.get("ema", ck["model"])
        if total is None:
            total = {k: v.double().clone() for k, v in sd.items()}
        else:
            for k, v in sd.items():
                total[k] += v.double()
    mean = {k: (v / len(epochs)).float() for k, v in total.items()}
    out = a.output or os.path.join(a.run_dir, "avg.pt")
    save_atomic(dict(cfg=ck["cfg"], model=mean, epoch=ck["epoch"], args=ck["args"],
                     averaged=[a.first, a.last]), out)
    print(f"{out}: mean of epochs {a.first}-{a.last}")


if __name__ == "__main__":
    main()
