"""Whether Debian's PyTorch (/usr/bin/python3 with torch, PIL, numpy) is
there, for the tests that run model/train's code; they skip without it."""
import subprocess

SKIP = 77
PYTHON = "/usr/bin/python3"


def missing():
    """None when PYTHON imports torch, PIL and numpy, else why not."""
    probe = subprocess.run([PYTHON, "-c", "import torch, PIL, numpy"], capture_output=True)
    if probe.returncode != 0:
        return f"{PYTHON} lacks torch, numpy or PIL (python3-torch)"
    return None
