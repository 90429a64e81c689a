#!/usr/bin/env python3
"""Accuracy of the shipped weights on the val split (needs ../shared/data).

    model-accuracy.py stated FACET_EVAL WEIGHTS DATA
        facet-eval's F1 equals the figures model/weights/NAME.eval.json
        states (what model/README.md quotes), within 0.5 points.
    model-accuracy.py peer FACET_EVAL WEIGHTS DATA
        facet-eval's F1 equals eval.py's (PyTorch) on the same weights,
        within 0.3 points.
Exit 77 (skipped) when the data or Debian's PyTorch is missing.
"""
import json
import os
import subprocess
import sys

import pytorch_probe
from pytorch_probe import SKIP

here = os.path.dirname(os.path.abspath(__file__))
train = os.path.join(here, "..", "model", "train")


def facet_eval(exe, weights, data):
    out = subprocess.run([exe, "--data", data, "--model", weights, "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def torch_eval(weights, data):
    env = dict(os.environ, PYTHONPATH=train)
    out = subprocess.run([pytorch_probe.PYTHON, os.path.join(train, "eval.py"), weights,
                          "--data", data, "--json"],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)


def compare(name, got, want, tol):
    ok = True
    for key in ("mean_f1", "mean_f1_face10"):
        diff = abs(got[key] - want[key]) * 100
        print(f"{name}: {key} facet-eval {got[key]:.4f} vs {want[key]:.4f}: "
              f"{diff:.3f} points (tolerance {tol})")
        ok &= diff <= tol
    return ok


def main():
    mode, exe, weights, data = sys.argv[1:5]
    if not os.path.isdir(os.path.join(data, "images")):
        print(f"skipped: {data} not found (the shared data set is not beside this clone)")
        return SKIP
    if mode == "peer":
        why = pytorch_probe.missing()
        if why:
            print(f"skipped: {why}")
            return SKIP
    got = facet_eval(exe, weights, data)
    if got["images"] != len(os.listdir(os.path.join(data, "images"))):
        print(f"facet-eval scored {got['images']} images only")
        return 1
    if mode == "stated":
        stated = os.path.splitext(os.path.realpath(weights))[0] + ".eval.json"
        with open(stated) as f:
            want = json.load(f)
        return 0 if compare("stated", got, want, 0.5) else 1
    return 0 if compare("eval.py", got, torch_eval(weights, data), 0.3) else 1


if __name__ == "__main__":
    sys.exit(main())
