#!/usr/bin/python3
"""Turn a training run into shipped weights and their figures.

    /usr/bin/python3 model/train/release.py RUN_DIR NAME [--checkpoint best.pt] [--golden PATH]

Writes model/weights/NAME.fpw (from RUN_DIR/best.pt, or the --checkpoint
named, such as average.py's avg.pt) and
model/weights/NAME.eval.json: the val figures of the exported file by the
protocol of model.md, the epoch chosen, parameters, GMAC, training time and
the exact training command (from the checkpoint's arguments).
"""
import argparse
import json
import os
import sys

import torch

from data import load_split
from eval import evaluate
from export import write_fpw, write_golden
from fpliif import count_params, gmac
from fpw import read_fpw

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = os.path.join(HERE, "..", "weights")


def train_hours(run_dir, epoch):
    secs = 0.0
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r["epoch"] <= epoch:
                secs += r.get("train_s", 0) + r.get("val_s", 0)
    return secs / 3600


def repo_path(k, v):
    """--init as the run folder it names would be from the repository root
    (a weights file, .fpw, is named as it was given)."""
    if k != "init" or v.endswith(".fpw"):
        return v
    return os.path.join("runs", os.path.basename(os.path.dirname(os.path.abspath(v))),
                        os.path.basename(v))


def command(args):
    """train.py's command line from a checkpoint's args, machine paths made
    repository-relative and the run directory named as runs/NAME."""
    flags = " ".join(f"--{k.replace('_', '-')} {repo_path(k, v)}" for k, v in sorted(args.items())
                     if k not in ("resume", "no_bf16", "data", "out") and v not in (None, []))
    run = os.path.basename(os.path.normpath(args["out"]))
    return ("/usr/bin/python3 model/train/train.py --data ../shared/data/celebamask-mini "
            f"--out runs/{run} {flags}" + (" --no-bf16" if args.get("no_bf16") else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("name")
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "..", "shared", "data",
                                                   "celebamask-mini"))
    ap.add_argument("--checkpoint", default="best.pt", help="file of RUN_DIR to ship")
    ap.add_argument("--golden", help="also write a golden fixture of these weights")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ck = torch.load(os.path.join(a.run_dir, a.checkpoint), map_location="cpu")
    from fpliif import FPLIIF
    model = FPLIIF(**ck["cfg"])
    model.load_state_dict(ck["model"])
    path = os.path.join(WEIGHTS, a.name + ".fpw")
    size = write_fpw(model.eval(), path)
    shipped, _ = read_fpw(path)
    imgs, masks, _ = load_split(os.path.join(a.data, "val"))
    r = evaluate(shipped, imgs, masks, res=128)
    r.update(weights=a.name + ".fpw", bytes=size, epoch=ck["epoch"], params=count_params(model),
             gmac_128_128=round(gmac(model.cfg), 4), gmac_128_256=round(gmac(model.cfg, 128, 256), 4),
             train_hours=round(train_hours(a.run_dir, ck["epoch"]), 2),
             seed=ck["args"]["seed"], command=command(ck["args"]), cfg=model.cfg)
    if "averaged" in ck:
        r["averaged_epochs"] = ck["averaged"]
    with open(os.path.join(WEIGHTS, a.name + ".eval.json"), "w") as f:
        json.dump(r, f, indent=1)
        f.write("\n")
    if a.golden:
        write_golden(shipped, a.golden, 128, 512)
    print(f"{path}: epoch {ck['epoch']}, val mean F1 {r['mean_f1']:.4f}, "
          f"face-10 {r['mean_f1_face10']:.4f}", file=sys.stderr)


if __name__ == "__main__":
    main()
