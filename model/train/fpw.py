"""Read a weights file (model/FORMAT.md) back into an FPLIIF module."""
import struct
import zlib

import numpy as np
import torch

from fpliif import FPLIIF

MAGIC = b"FPLIIF\r\n"


def read_fpw(path):
    """-> (FPLIIF in eval mode, header dict). Raises ValueError on a bad file."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 256 or buf[:8] != MAGIC:
        raise ValueError(f"{path}: not an FP-LIIF weights file")
    version, hsize, fsize, crc = struct.unpack_from("<IIQI", buf, 8)
    if version != 1 or hsize != 256 or fsize != len(buf):
        raise ValueError(f"{path}: version {version}, header {hsize}, size {fsize}/{len(buf)}")
    check = bytearray(buf)
    struct.pack_into("<I", check, 24, 0)
    if zlib.crc32(bytes(check)) & 0xFFFFFFFF != crc:
        raise ValueError(f"{path}: checksum mismatch")
    k, rt, rmin, rmax, hs = struct.unpack_from("<5I", buf, 28)
    chans = struct.unpack_from("<3I", buf, 48)
    blocks = struct.unpack_from("<3I", buf, 60)
    rh, rc, mh, layers = struct.unpack_from("<4I", buf, 72)
    ntensors, _, table, skip = struct.unpack_from("<4I", buf, 112)
    model = FPLIIF(hs, chans, blocks, rh, rc, mh, layers, skip=bool(skip), num_classes=k)
    sd = {}
    for i in range(ntensors):
        name, dtype, ndim, *rest = struct.unpack_from("<56sII4IQQ", buf, table + 96 * i)
        shape, off, nbytes = rest[:ndim], rest[4], rest[5]
        a = np.frombuffer(buf, "<f4", nbytes // 4, off).reshape(shape)
        sd[name.rstrip(b"\0").decode()] = torch.from_numpy(a.copy())
    model.load_state_dict(sd)
    model.eval()
    return model, dict(classes=k, res_train=rt, res_min=rmin, res_max=rmax)
