#!/usr/bin/env python3
"""Check that frames read back from a device are frames that were written.

    framecheck.py REF GOT [--frame-size N] [--min N] [--max-skips N] [--label S]

REF and GOT are each a raw file of frames back to back (split every N bytes)
or a folder of one file per frame (taken in name order). Passes when GOT has
at least --min frames, every one byte-equal to a frame of REF, in REF's order
(the writer loops over REF, so the order wraps around): a reader may start
anywhere and may miss frames (at most --max-skips), but never sees one twice
in a row or out of order.
"""

import argparse
import hashlib
import os
import sys


def load(path, frame_size):
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if not n.startswith("."))
        for n in names:
            with open(os.path.join(path, n), "rb") as f:
                yield f.read()
        return
    if not frame_size:
        raise SystemExit(f"{path}: a raw file needs --frame-size")
    size = os.path.getsize(path)
    if size % frame_size:
        raise SystemExit(f"{path}: {size} bytes is no whole number of "
                         f"{frame_size}-byte frames")
    with open(path, "rb") as f:
        while chunk := f.read(frame_size):
            yield chunk


def digest(frame):
    return hashlib.sha1(frame).digest()


def next_index(candidates, prev, n):
    """The candidate that comes soonest after prev in REF's cyclic order."""
    if prev is None:
        return candidates[0], 0
    steps = [((i - prev) % n or n, i) for i in candidates]
    step, i = min(steps)
    return i, step


def check(ref, got, args):
    index = {}
    for i, frame in enumerate(ref):
        index.setdefault(digest(frame), []).append(i)
    n = len(ref)
    prev, first, skips, count = None, None, 0, 0
    for k, frame in enumerate(got):
        candidates = index.get(digest(frame))
        if not candidates:
            return f"frame {k} ({len(frame)} bytes) equals no written frame"
        i, step = next_index(candidates, prev, n)
        if prev is not None and step == n:
            return f"frame {k} repeats written frame {i}"
        if prev is not None and step > n // 2:
            return f"frame {k} is written frame {i}, out of order after {prev}"
        if prev is not None:
            skips += step - 1
        first = i if first is None else first
        prev, count = i, count + 1
    if count < args.min:
        return f"{count} frames read, at least {args.min} expected"
    if skips > args.max_skips:
        return f"{skips} written frames missed, at most {args.max_skips} allowed"
    print(f"{args.label}: {count} frames read, each equal to a written frame "
          f"(written frames {first}..{prev} of {n}, {skips} missed)")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ref")
    ap.add_argument("got")
    ap.add_argument("--frame-size", type=int, default=0)
    ap.add_argument("--min", type=int, default=1)
    ap.add_argument("--max-skips", type=int, default=1 << 30)
    ap.add_argument("--label", default="frames")
    args = ap.parse_args()
    ref = list(load(args.ref, args.frame_size))
    if not ref:
        raise SystemExit(f"{args.ref}: no frames")
    error = check(ref, load(args.got, args.frame_size), args)
    if error:
        print(f"FAIL: {args.label}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
