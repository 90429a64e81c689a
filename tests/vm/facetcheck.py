#!/usr/bin/env python3
"""Checks of what facetd wrote, run on the host after a VM scenario (Python
under TCG is slow): Python 3's standard library only.

    facetcheck.py parts PNG|RAW [--yuyv WxH] [--box X0,Y0,X1,Y1] [--min-skin PCT]
        The preview's screenshot (8-bit RGBA or RGB PNG, non-interlaced), or
        the last frame of a raw YUYV stream (--yuyv: what the virtual camera
        gave), shows the parts blended over the image: within the box (fractions of
        the image, default the middle, where the clip's face is) at least
        PCT % of the pixels have the colour of skin (204, 0, 0) blended at
        the preview's default opacity (55 %) over any image. The same count
        on a frame of the clip itself (--control RAW, YUYV at the PNG's size)
        must stay under 1 %: the criterion does not hold for the image alone.
    facetcheck.py match Y4M REF --ref-format nv12|yuyv --size WxH [--max-diff N]
        Every frame of Y4M (4:2:0, facetd's y4m output with --effect none) is
        a frame of the raw clip REF, converted: the mean absolute difference
        of its Y, U and V samples to the nearest frame of REF is at most N
        (default 3; facetd's conversions give about 0.3, another frame of
        the clip 2 and more, NV12 read as YUYV 20): the capture path
        converted the format right. --if-present: pass when Y4M is absent.
    facetcheck.py repeats RAW --frame-size N [--min-frames N] [--min-repeats PCT]
        RAW holds at least --min-frames frames; at least PCT % of successive
        frames are equal: the virtual camera repeats the newest frame at its
        rate while no new one comes.
    facetcheck.py labels RAW --size WxH [--min-frames N] [--min-parts N]
        A label stream (GREY, one class id per pixel): every value is a class
        of CelebAMask-HQ (0..18), and the last frame has at least --min-parts
        classes besides the background.
"""

import argparse
import os
import struct
import sys
import zlib

SKIN = (204, 0, 0)
ALPHA = 0.55


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def size_arg(s):
    w, _, h = s.partition("x")
    return int(w), int(h)


# ---- PNG ----

def read_png(path):
    """(width, height, channels, rows as bytes) of an 8-bit RGB(A) PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path}: not a PNG")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    if not hdr:
        fail(f"{path}: no IHDR")
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        fail(f"{path}: depth {depth}, colour type {ctype}, interlace {interlace}: "
             "not 8-bit RGB(A), non-interlaced")
    ch = 4 if ctype == 6 else 3
    raw = zlib.decompress(b"".join(idat))
    stride = w * ch
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ftype == 1:
            for i in range(ch, stride):
                line[i] = (line[i] + line[i - ch]) & 255
        elif ftype == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - ch] if i >= ch else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ftype == 4:
            for i in range(stride):
                a = line[i - ch] if i >= ch else 0
                b, c = prev[i], prev[i - ch] if i >= ch else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        elif ftype != 0:
            fail(f"{path}: row {y}: filter type {ftype}")
        rows.append(bytes(line))
        prev = line
    return w, h, ch, rows


def is_blend_of(r, g, b, colour):
    """Whether (r, g, b) can be colour blended at ALPHA over some pixel:
    each channel between ALPHA * colour and ALPHA * colour + (1 - ALPHA) * 255,
    with a margin of 3 for rounding and chroma subsampling."""
    for v, c in zip((r, g, b), colour):
        lo, hi = ALPHA * c - 3, ALPHA * c + (1 - ALPHA) * 255 + 3
        if not lo <= v <= hi:
            return False
    return True


def count_skin(pixel_rows, ch, box):
    x0, y0, x1, y1 = box
    hits = total = 0
    for row in pixel_rows[y0:y1]:
        for x in range(x0, x1):
            r, g, b = row[x * ch:x * ch + 3]
            total += 1
            # the blend keeps 45 % of green and blue: red stands out far
            # more than on skin in the clip itself (its red - green is
            # under 80 on 99 % of the face, over 100 on 0.1 %)
            if r - g >= 100 and r - b >= 100 and is_blend_of(r, g, b, SKIN):
                hits += 1
    return hits, total


def yuyv_to_rgb_rows(data, w, h):
    rows = []
    for y in range(h):
        line = data[y * w * 2:(y + 1) * w * 2]
        out = bytearray(w * 3)
        for x in range(w):
            yy = line[2 * x]
            u, v = line[(2 * x & ~3) + 1], line[(2 * x & ~3) + 3]
            c, d, e = 1.164 * (yy - 16), u - 128, v - 128
            for k, val in enumerate((c + 1.596 * e, c - 0.392 * d - 0.813 * e, c + 2.017 * d)):
                out[3 * x + k] = max(0, min(255, int(val + 0.5)))
        rows.append(bytes(out))
    return rows


def cmd_parts(a):
    if a.yuyv:
        w, h = size_arg(a.yuyv)
        with open(a.png, "rb") as fh:
            data = fh.read()
        if len(data) < w * h * 2:
            fail(f"{a.png}: shorter than one {w}x{h} YUYV frame")
        last = data[(len(data) // (w * h * 2) - 1) * w * h * 2:][:w * h * 2]
        ch, rows = 3, yuyv_to_rgb_rows(last, w, h)
    else:
        w, h, ch, rows = read_png(a.png)
    f = [float(v) for v in a.box.split(",")]
    box = (int(f[0] * w), int(f[1] * h), int(f[2] * w), int(f[3] * h))
    hits, total = count_skin(rows, ch, box)
    share = 100.0 * hits / total
    print(f"{a.png}: {w}x{h}, {share:.1f} % of the box {box} shows skin blended "
          f"over the image (at least {a.min_skin} % wanted)")
    if share < a.min_skin:
        fail(f"{a.png}: too few skin-coloured pixels in the face region")
    if a.control:
        with open(a.control, "rb") as fh:
            frame = fh.read(w * h * 2)
        if len(frame) < w * h * 2:
            fail(f"{a.control}: shorter than one {w}x{h} YUYV frame")
        c_hits, c_total = count_skin(yuyv_to_rgb_rows(frame, w, h), 3, box)
        c_share = 100.0 * c_hits / c_total
        print(f"{a.control}: the clip itself: {c_share:.1f} %")
        if c_share >= 1.0:
            fail("the criterion also holds for the clip without the parts")


# ---- Y4M against the raw clip ----

def read_y4m(path):
    with open(path, "rb") as f:
        data = f.read()
    end = data.index(b"\n")
    head = data[:end].split()
    if head[0] != b"YUV4MPEG2":
        fail(f"{path}: not YUV4MPEG2")
    w = h = 0
    chroma = b"420"
    for t in head[1:]:
        if t[:1] == b"W":
            w = int(t[1:])
        elif t[:1] == b"H":
            h = int(t[1:])
        elif t[:1] == b"C":
            chroma = t[1:]
    if not chroma.startswith(b"420"):
        fail(f"{path}: chroma {chroma.decode()}: 4:2:0 expected")
    n = w * h * 3 // 2
    frames, pos = [], end + 1
    while pos < len(data):
        nl = data.index(b"\n", pos)
        if not data[pos:nl].startswith(b"FRAME"):
            fail(f"{path}: no FRAME header at byte {pos}")
        frames.append(data[nl + 1:nl + 1 + n])
        pos = nl + 1 + n
    return w, h, frames


def to_i420(frame, fmt, w, h):
    """(Y, U, V) planes of a raw frame."""
    if fmt == "nv12":
        y, uv = frame[:w * h], frame[w * h:w * h * 3 // 2]
        return y, uv[0::2], uv[1::2]
    if fmt == "yuyv":
        y = frame[0::2]
        u = bytearray(w // 2 * (h // 2))
        v = bytearray(len(u))
        for row in range(h // 2):
            a = frame[2 * row * w * 2:(2 * row + 1) * w * 2]
            b = frame[(2 * row + 1) * w * 2:(2 * row + 2) * w * 2]
            for x in range(w // 2):
                u[row * (w // 2) + x] = (a[4 * x + 1] + b[4 * x + 1] + 1) // 2
                v[row * (w // 2) + x] = (a[4 * x + 3] + b[4 * x + 3] + 1) // 2
        return y, bytes(u), bytes(v)
    fail(f"unknown format {fmt}")
    return None


def mad(a, b, step):
    """Mean absolute difference over every step-th sample."""
    s = sum(abs(x - y) for x, y in zip(a[::step], b[::step]))
    return s / max(1, len(a[::step]))


def cmd_match(a):
    if a.if_present and not os.path.exists(a.y4m):
        print(f"{a.y4m}: absent: not compared")
        return
    w, h = size_arg(a.size)
    ow, oh, frames = read_y4m(a.y4m)
    if (ow, oh) != (w, h):
        fail(f"{a.y4m}: {ow}x{oh}, not {w}x{h}")
    if not frames:
        fail(f"{a.y4m}: no frames")
    fsize = w * h * 2 if a.ref_format == "yuyv" else w * h * 3 // 2
    with open(a.ref, "rb") as f:
        data = f.read()
    refs = [to_i420(data[i:i + fsize], a.ref_format, w, h)
            for i in range(0, len(data) - fsize + 1, fsize)]
    for k, fr in enumerate(frames):
        y, u, v = fr[:w * h], fr[w * h:w * h * 5 // 4], fr[w * h * 5 // 4:]
        best = min((mad(y, r[0], 7) + mad(u, r[1], 5) + mad(v, r[2], 5)) / 3
                   for r in refs)
        print(f"{a.y4m}: frame {k}: mean difference {best:.2f} to the nearest "
              f"frame of the clip (at most {a.max_diff})")
        if best > a.max_diff:
            fail(f"{a.y4m}: frame {k} is no frame of {a.ref} ({a.ref_format})")


# ---- raw streams read back from the virtual camera ----

def split(path, size):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) % size:
        fail(f"{path}: {len(data)} bytes is no whole number of {size}-byte frames")
    return [data[i:i + size] for i in range(0, len(data), size)]


def cmd_repeats(a):
    frames = split(a.raw, a.frame_size)
    if len(frames) < a.min_frames:
        fail(f"{a.raw}: {len(frames)} frames, {a.min_frames} wanted")
    same = sum(1 for p, q in zip(frames, frames[1:]) if p == q)
    share = 100.0 * same / max(1, len(frames) - 1)
    print(f"{a.raw}: {len(frames)} frames, {same} equal to the one before "
          f"({share:.0f} %, at least {a.min_repeats} % wanted)")
    if share < a.min_repeats:
        fail(f"{a.raw}: the frames do not repeat: is the output paced?")


def cmd_labels(a):
    w, h = size_arg(a.size)
    frames = split(a.raw, w * h)
    if len(frames) < a.min_frames:
        fail(f"{a.raw}: {len(frames)} frames, {a.min_frames} wanted")
    top = max(max(f) for f in frames)
    parts = sorted(set(frames[-1]) - {0})
    print(f"{a.raw}: {len(frames)} frames of {w}x{h}, largest value {top}, "
          f"classes in the last: {parts}")
    if top > 18:
        fail(f"{a.raw}: value {top} is no class id (0..18)")
    if len(parts) < a.min_parts:
        fail(f"{a.raw}: {len(parts)} classes besides the background, "
             f"{a.min_parts} wanted")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parts")
    p.add_argument("png")
    p.add_argument("--yuyv", metavar="WxH", help="a raw YUYV stream, not a PNG")
    p.add_argument("--box", default="0.3,0.25,0.7,0.85")
    p.add_argument("--min-skin", type=float, default=10.0)
    p.add_argument("--control")
    p = sub.add_parser("match")
    p.add_argument("y4m")
    p.add_argument("ref")
    p.add_argument("--ref-format", required=True, choices=["nv12", "yuyv"])
    p.add_argument("--size", required=True)
    p.add_argument("--max-diff", type=float, default=3.0)
    p.add_argument("--if-present", action="store_true",
                   help="pass when Y4M is absent (the scenario said why)")
    p = sub.add_parser("repeats")
    p.add_argument("raw")
    p.add_argument("--frame-size", type=int, required=True)
    p.add_argument("--min-frames", type=int, default=1)
    p.add_argument("--min-repeats", type=float, default=50.0)
    p = sub.add_parser("labels")
    p.add_argument("raw")
    p.add_argument("--size", required=True)
    p.add_argument("--min-frames", type=int, default=1)
    p.add_argument("--min-parts", type=int, default=0)
    a = ap.parse_args()
    {"parts": cmd_parts, "match": cmd_match, "repeats": cmd_repeats,
     "labels": cmd_labels}[a.cmd](a)


if __name__ == "__main__":
    main()
