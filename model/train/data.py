"""CelebAMask-mini loading and webcam-style augmentation.

A split directory holds images/*.jpg (512x512 RGB) and masks/*.png (512x512,
values 0..18) with matching stems. Everything is loaded into memory once.

Augmentation works on whole batches in torch. Each sample gets an affine map
from output coordinates u (the 128x128 network input, pixel centres in
[-1, 1]) to photo coordinates p = A u + t: a scale in 0.5-2 (the face small
and off-centre or large and cut by the frame edge), a rotation, a
translation and a mirror. The image is resampled through that map from an
area-averaged pyramid level; the label of a query point u is read from the
512x512 mask at p (nearest), so the decoder sees boundaries at full mask
resolution. Photometric steps model webcam frames: white balance, gamma,
contrast, saturation, low light, blur, sensor noise and JPEG artefacts
(class Webcam, which eval.py's --webcam also applies to the val photos).
A "clean" share of the images (TrainSet(clean=P)) is framed as the portrait
is, within a few per cent, and skips the photometric steps.
"""
import io
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fpliif import MEAN, STD, NUM_CLASSES

# The person's own left/right: a mirror swaps these pairs.
FLIP_PAIRS = ((4, 5), (6, 7), (8, 9))


IGNORE = 255  # a pseudo-label mask's "no label here" (train.py skips it)


def flip_lut(n=NUM_CLASSES):
    lut = torch.arange(n)
    for a, b in FLIP_PAIRS:
        lut[a], lut[b] = b, a
    return lut


def list_pairs(split_dir):
    names = sorted(os.listdir(os.path.join(split_dir, "images")))
    stems = [os.path.splitext(n)[0] for n in names if n.endswith(".jpg")]
    if not stems:
        raise FileNotFoundError(f"{split_dir}/images: no .jpg files")
    return stems


def load_split(split_dir, allow_ignore=False):
    """-> (images uint8 (N, 512, 512, 3), masks uint8 (N, 512, 512), stems).
    With allow_ignore, masks may also hold IGNORE (pseudo-labels)."""
    stems = list_pairs(split_dir)
    imgs = np.empty((len(stems), 512, 512, 3), np.uint8)
    masks = np.empty((len(stems), 512, 512), np.uint8)
    for i, s in enumerate(stems):
        im = Image.open(os.path.join(split_dir, "images", s + ".jpg")).convert("RGB")
        mk = Image.open(os.path.join(split_dir, "masks", s + ".png"))
        if im.size != (512, 512) or mk.size != (512, 512):
            raise ValueError(f"{split_dir}: {s}: expected 512x512")
        imgs[i] = np.asarray(im)
        masks[i] = np.asarray(mk)
    bad = (masks >= NUM_CLASSES) & ~((masks == IGNORE) & allow_ignore)
    if bad.any():
        raise ValueError(f"{split_dir}: mask value {masks.max()} out of range")
    return imgs, masks, stems


def to_float(imgs_u8):
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1]."""
    return torch.from_numpy(imgs_u8).permute(0, 3, 1, 2).float().div_(255)


def area_down(x, f):
    return F.avg_pool2d(x, f) if f > 1 else x


def normalise(x):
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def class_weights(masks, power=0.5, lo=0.1, hi=10.0):
    """Inverse-frequency weights to `power`, median 1, clipped to [lo, hi]."""
    counts = np.bincount(masks.reshape(-1), minlength=NUM_CLASSES).astype(np.float64)
    freq = np.maximum(counts / counts.sum(), 1e-7)
    w = (np.median(freq) / freq) ** power
    return torch.tensor(np.clip(w, lo, hi), dtype=torch.float32)


def uniform(gen, n, lo, hi):
    return lo + (hi - lo) * torch.rand(n, generator=gen)


class Webcam:
    """The photometric steps of a webcam frame, each applied to a random
    subset of a batch (N, 3, H, W) in [0, 1]: white balance, saturation,
    contrast, brightness, gamma, low light, blur, sensor noise, JPEG."""

    def __init__(self, gen, rng):
        self.gen, self.rng = gen, rng

    def _u(self, n, lo, hi):
        return uniform(self.gen, n, lo, hi)

    def __call__(self, x):
        b = x.shape[0]
        pick = lambda p: torch.rand(b, generator=self.gen) < p
        col = lambda lo, hi: self._u(b, lo, hi).view(b, 1, 1, 1)
        x = x * torch.where(pick(0.5).view(b, 1, 1, 1),
                            self._u(b * 3, 0.85, 1.15).view(b, 3, 1, 1), torch.ones(1))
        gray = x.mean(1, keepdim=True)
        x = gray + (x - gray) * col(0.5, 1.5)
        m = x.mean((1, 2, 3), keepdim=True)
        x = m + (x - m) * col(0.6, 1.4)
        x = (x * col(0.65, 1.35)).clamp(0, 1)
        x = x ** col(0.7, 1.5)
        dark = pick(0.2).view(b, 1, 1, 1)
        x = torch.where(dark, x * col(0.12, 0.5), x)
        x = self._blur(x, pick(0.3))
        x = self._noise(x, pick(0.5) | dark.view(b))
        x = self._jpeg(x.clamp(0, 1), pick(0.4))
        return x

    def _blur(self, x, sel):
        for i in torch.nonzero(sel).flatten().tolist():
            sigma = float(self._u(1, 0.4, 1.6))
            r = int(math.ceil(2.5 * sigma))
            k = torch.exp(-torch.arange(-r, r + 1).float() ** 2 / (2 * sigma ** 2))
            k = (k / k.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
            xi = F.pad(x[i:i + 1], (r, r, r, r), mode="replicate")
            xi = F.conv2d(xi, k, groups=3)
            x[i:i + 1] = F.conv2d(xi, k.transpose(2, 3), groups=3)
        return x

    def _noise(self, x, sel):
        b = x.shape[0]
        sd = self._u(b, 0.0, 0.04).view(b, 1, 1, 1)
        shot = self._u(b, 0.0, 0.06).view(b, 1, 1, 1)
        n = torch.randn(x.shape, generator=self.gen) * (sd + shot * x.clamp(min=0).sqrt())
        return torch.where(sel.view(b, 1, 1, 1), x + n, x)

    def _jpeg(self, x, sel):
        for i in torch.nonzero(sel).flatten().tolist():
            a = (x[i].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, "JPEG", quality=int(self.rng.integers(25, 91)))
            a = np.asarray(Image.open(buf).convert("RGB"))
            x[i] = torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 255
        return x


EDGE = 3  # mask pixels (of 512) around a query point that make it a border one


class TrainSet:
    """Random augmented batches: (x (B,3,S,S) normalised, q (B,Q,2), y (B,Q),
    edge (B,Q): the query lies on a part border)."""

    def __init__(self, split_dir, size=128, queries=4096, seed=0, extra=(), clean=0.0):
        imgs, masks, self.stems = load_split(split_dir)
        self.real = len(self.stems)
        self.class_masks = masks
        for d in extra:
            im2, mk2, st2 = load_split(d, allow_ignore=True)
            imgs, masks = np.concatenate([imgs, im2]), np.concatenate([masks, mk2])
            self.stems += st2
        self.masks = torch.from_numpy(masks)
        full = to_float(imgs)
        # Pyramid levels, each an exact area average of the 512 photo.
        self.lv = {256: area_down(full, 2), 128: area_down(full, 4)}
        del full
        self.size, self.queries = size, queries
        self.clean = clean  # share of images framed like a portrait, no photometric steps
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.lut = flip_lut(256)
        self.webcam = Webcam(self.gen, self.rng)

    def __len__(self):
        return len(self.stems)

    def _u(self, n, lo, hi):
        return uniform(self.gen, n, lo, hi)

    def _affine(self, b, clean):
        """theta (b, 2, 3) mapping output coords to photo coords, s (b,),
        flip (b,); a clean image is framed near the portrait's own framing."""
        near = torch.rand(b, generator=self.gen) < 0.5
        s = torch.where(near, self._u(b, 0.8, 1.25),
                        torch.exp(self._u(b, math.log(0.5), math.log(2.0))))
        ang = self._u(b, -25, 25) * math.pi / 180
        flip = torch.rand(b, generator=self.gen) < 0.5
        span = torch.clamp(1 / s - 1, min=0) + 0.3 / s
        if self.clean > 0:  # (no draws otherwise: older runs replay exactly)
            s = torch.where(clean, self._u(b, 0.95, 1.05), s)
            ang = torch.where(clean, self._u(b, -5, 5) * math.pi / 180, ang)
            span = torch.where(clean, torch.full_like(span, 0.05), span)
        t = (torch.rand(b, 2, generator=self.gen) * 2 - 1) * span.unsqueeze(1)
        c, sn = torch.cos(ang) / s, torch.sin(ang) / s
        fx = torch.where(flip, -1.0, 1.0)
        theta = torch.stack([torch.stack([c * fx, -sn, t[:, 0]], 1),
                             torch.stack([sn * fx, c, t[:, 1]], 1)], 1)
        return theta, s, flip

    def _resample(self, idx, theta, s):
        b, S = len(idx), self.size
        grid = F.affine_grid(theta, (b, 3, S, S), align_corners=False)
        out = torch.empty(b, 3, S, S)
        for lvl, sel in ((128, s < 0.75), (256, s >= 0.75)):
            if sel.any():
                src = self.lv[lvl][idx[sel]]
                out[sel] = F.grid_sample(src, grid[sel], mode="bilinear",
                                         padding_mode="zeros", align_corners=False)
        inside = F.grid_sample(torch.ones(b, 1, 8, 8), grid, mode="bilinear",
                               padding_mode="zeros", align_corners=False)
        fill = self._fill(b, S)
        return out + (1 - inside) * fill

    def _fill(self, b, S):
        """Background outside the photo: a colour with low-frequency texture."""
        base = torch.rand(b, 3, 1, 1, generator=self.gen)
        tex = torch.rand(b, 3, 4, 4, generator=self.gen) - 0.5
        tex = F.interpolate(tex, size=(S, S), mode="bilinear", align_corners=False)
        return (base + 0.4 * tex).clamp(0, 1)

    def _labels(self, idx, theta, flip):
        b, Q = len(idx), self.queries
        u = torch.rand(b, Q, 2, generator=self.gen) * 2 - 1
        p = torch.einsum("bij,bqj->bqi", theta[:, :, :2], u) + theta[:, None, :, 2]
        px = torch.floor((p[..., 0] + 1) * 256).long()
        py = torch.floor((p[..., 1] + 1) * 256).long()
        ok = (px >= 0) & (px < 512) & (py >= 0) & (py < 512)
        flat = py.clamp(0, 511) * 512 + px.clamp(0, 511)
        m = self.masks[idx].reshape(b, -1).long()
        y = torch.gather(m, 1, flat)
        y = torch.where(ok, y, torch.zeros_like(y))
        # on a border: a mask pixel EDGE away (about 0.75 input pixels at
        # scale 1) has another class
        edge = torch.zeros_like(ok)
        for dx, dy in ((EDGE, 0), (-EDGE, 0), (0, EDGE), (0, -EDGE)):
            nb = (py + dy).clamp(0, 511) * 512 + (px + dx).clamp(0, 511)
            edge |= torch.gather(m, 1, nb) != y
        edge &= ok
        y = torch.where(flip.unsqueeze(1), self.lut[y], y)
        return u, y, edge

    def batch(self, idx):
        idx = torch.as_tensor(idx)
        clean = torch.zeros(len(idx), dtype=torch.bool)
        if self.clean > 0:
            clean = torch.rand(len(idx), generator=self.gen) < self.clean
        theta, s, flip = self._affine(len(idx), clean)
        x = self._resample(idx, theta, s)
        x = torch.where(clean.view(-1, 1, 1, 1), x, self.webcam(x))
        q, y, edge = self._labels(idx, theta, flip)
        return normalise(x), q, y, edge


def resize_box(img_u8, size):
    """One photo (H, W, 3) uint8 -> (size, size, 3) uint8 by area averaging
    (PIL's BOX filter; the C tools use libyuv's box filter the same way)."""
    if img_u8.shape[0] == size and img_u8.shape[1] == size:
        return img_u8
    return np.asarray(Image.fromarray(img_u8).resize((size, size), Image.BOX))


def eval_inputs(imgs_u8, size=128, webcam=None):
    """Photos (N, H, W, 3) uint8 -> normalised network inputs (N, 3, size, size),
    through a Webcam's photometric steps if one is given."""
    x = to_float(np.stack([resize_box(im, size) for im in imgs_u8]))
    if webcam is not None:
        x = webcam(x).clamp(0, 1)
    return normalise(x)


def webcam_steps(seed):
    """A Webcam whose draws depend on the seed alone: the same frames for
    every model evaluated with it."""
    return Webcam(torch.Generator().manual_seed(seed), np.random.default_rng(seed))
