"""FP-LIIF: a conv encoder and a local implicit (LIIF) decoder for face parsing.

The layout is what the C engine (model/engine.c) computes; every choice that
the paper leaves open is a field of the variant config (VARIANTS below), and
export.py writes those fields into the weights file.

Encoder: head conv (3 -> c1, stride head_stride), group 1 (n1 EDSR blocks,
group residual), strided conv (c1 -> c2, /2), group 2, strided conv
(c2 -> c3, /2), group 3 -> Z.
Decoder: reduction = conv3x3(c3 -> rh) + ReLU + conv1x1(rh -> rc) on Z
(the unfold-3x3 + 2-layer MLP of the paper, written as the conv it equals);
bilinear sampling of that grid at the query points (align_corners=False,
border clamp); concat [feature (rc), g = mean of Z (c3), (x, y)]; pixel MLP
of `mlp_layers` hidden layers of width mh; K logits.
With `skip` set, the group-1 output (c1 channels at the head's resolution)
is also sampled bilinearly at the query point and appended to the pixel
MLP's input: the 16x16 grid of a strided head is too coarse for an eye or a
brow, and this gives the decoder the encoder's finest features for the
price of c1 * mh multiply-adds a point.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 19

CLASS_NAMES = [
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow",
    "r_brow", "l_ear", "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat",
    "ear_r", "neck_l", "neck", "cloth",
]

# Inputs are RGB in [0, 1], normalised as (x - MEAN) / STD per channel.
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)

VARIANTS = {
    # The paper-size network of model.md (about 2.2 M parameters).
    "base": dict(head_stride=1, chans=(64, 64, 64), blocks=(2, 6, 16),
                 red_hidden=256, red_out=64, mlp_hidden=256, mlp_layers=4),
    # Real-time on two CPU cores: strided head, narrow group 1, a smaller
    # group 3 and a 128-wide pixel MLP of 3 hidden layers.
    "rt": dict(head_stride=2, chans=(32, 64, 64), blocks=(2, 4, 8),
               red_hidden=192, red_out=64, mlp_hidden=128, mlp_layers=3),
    # rt with the group-1 skip into the decoder.
    "rt-skip": dict(head_stride=2, chans=(32, 64, 64), blocks=(2, 4, 8),
                    red_hidden=192, red_out=64, mlp_hidden=128, mlp_layers=3,
                    skip=True),
    # rt-skip with twice the blocks in group 1 (the 64x64 features the skip
    # hands to the decoder) and half as many again in group 3 (16x16).
    "rt-deep": dict(head_stride=2, chans=(32, 64, 64), blocks=(4, 4, 12),
                    red_hidden=192, red_out=64, mlp_hidden=128, mlp_layers=3,
                    skip=True),
}


def conv3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    """EDSR block: x + conv(relu(conv(x)))."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = conv3(c, c)
        self.conv2 = conv3(c, c)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


class Group(nn.Module):
    """n blocks with a group-level residual."""

    def __init__(self, c, n):
        super().__init__()
        self.blocks = nn.Sequential(*[ResBlock(c) for _ in range(n)])

    def forward(self, x):
        return x + self.blocks(x)


class FPLIIF(nn.Module):
    def __init__(self, head_stride, chans, blocks, red_hidden, red_out,
                 mlp_hidden, mlp_layers, skip=False, num_classes=NUM_CLASSES):
        super().__init__()
        self.cfg = dict(head_stride=head_stride, chans=tuple(chans),
                        blocks=tuple(blocks), red_hidden=red_hidden,
                        red_out=red_out, mlp_hidden=mlp_hidden,
                        mlp_layers=mlp_layers, skip=bool(skip))
        c1, c2, c3 = chans
        self.head = conv3(3, c1, head_stride)
        self.g1 = Group(c1, blocks[0])
        self.down1 = conv3(c1, c2, 2)
        self.g2 = Group(c2, blocks[1])
        self.down2 = conv3(c2, c3, 2)
        self.g3 = Group(c3, blocks[2])
        self.red1 = conv3(c3, red_hidden)
        self.red2 = nn.Conv2d(red_hidden, red_out, 1)
        dims = [red_out + c3 + 2 + (c1 if skip else 0)] + [mlp_hidden] * mlp_layers
        self.mlp = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        self.out = nn.Linear(mlp_hidden, num_classes)

    def encode(self, x):
        """x: (B, 3, H, W) normalised -> features for decode(): R (B, rc, h, w),
        g (B, c3) and, with skip, the group-1 output S (B, c1, H', W')."""
        s = self.g1(self.head(x))
        x = self.down2(self.g2(self.down1(s)))
        z = self.g3(x)
        r = self.red2(F.relu(self.red1(z)))
        return (r, z.mean(dim=(2, 3)), s if self.cfg["skip"] else None)

    def decode(self, feats, q):
        """q: (B, Q, 2) as (x, y) in [-1, 1] -> logits (B, Q, K)."""
        r, g, s = feats
        f = sample(r, q)
        gq = g.unsqueeze(1).expand(-1, q.shape[1], -1).to(f.dtype)
        parts = [f, gq, q.to(f.dtype)]
        if s is not None:
            parts.append(sample(s, q).to(f.dtype))
        h = torch.cat(parts, dim=2)
        for layer in self.mlp:
            h = F.relu(layer(h))
        return self.out(h)

    def forward(self, x, q):
        return self.decode(self.encode(x), q)


def sample(grid, q):
    """Bilinear samples (B, Q, C) of grid (B, C, h, w) at q (B, Q, 2)."""
    f = F.grid_sample(grid, q.unsqueeze(1).to(grid.dtype), mode="bilinear",
                      padding_mode="border", align_corners=False)
    return f.squeeze(2).transpose(1, 2)


def grid_coords(h, w, device=None):
    """Pixel centres of an h x w output as (1, h*w, 2) (x, y) in [-1, 1]."""
    ys = -1 + (2 * torch.arange(h, device=device, dtype=torch.float32) + 1) / h
    xs = -1 + (2 * torch.arange(w, device=device, dtype=torch.float32) + 1) / w
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).reshape(1, h * w, 2)


@torch.no_grad()
def predict_logits(model, x, h, w, chunk=65536):
    """Dense logits (B, K, h, w) for a normalised input batch x."""
    feats = model.encode(x)
    q = grid_coords(h, w, x.device).expand(x.shape[0], -1, -1)
    outs = [model.decode(feats, q[:, i:i + chunk]) for i in range(0, h * w, chunk)]
    return torch.cat(outs, dim=1).transpose(1, 2).reshape(x.shape[0], -1, h, w)


def build(variant):
    return FPLIIF(**VARIANTS[variant])


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def gmac(cfg, res_in=128, res_out=128, num_classes=NUM_CLASSES):
    """Multiply-accumulates (G) of one forward pass, as the C engine runs it."""
    c1, c2, c3 = cfg["chans"]
    n1, n2, n3 = cfg["blocks"]
    s1 = res_in // cfg["head_stride"]
    s2, s3 = s1 // 2, s1 // 4
    conv = lambda ci, co, s, k=9: ci * co * k * s * s
    enc = conv(3, c1, s1) + 2 * n1 * conv(c1, c1, s1) + conv(c1, c2, s2)
    enc += 2 * n2 * conv(c2, c2, s2) + conv(c2, c3, s3) + 2 * n3 * conv(c3, c3, s3)
    rh, rc, mh, L = cfg["red_hidden"], cfg["red_out"], cfg["mlp_hidden"], cfg["mlp_layers"]
    red = conv(c3, rh, s3) + conv(rh, rc, s3, 1) + rc * mh * s3 * s3
    px = res_out * res_out * (2 * mh + (L - 1) * mh * mh + mh * num_classes)
    if cfg.get("skip"):
        px += res_out * res_out * c1 * mh
    return (enc + red + px) / 1e9
