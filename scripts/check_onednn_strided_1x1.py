"""Which strided 1x1 channels-last convolutions does this PyTorch's oneDNN survive?

libtorch 2.11's oneDNN corrupts the heap computing the kernel gradient of some stride-2 1x1
convolutions in channels-last layout (found on hipfrac's nano preset; PyTorch itself aborts
or segfaults). hipfrac runs the narrow ones (fewer than `NARROW_STRIDED_1X1` = 16 input
channels, crates/model/src/layers.rs) as subsampling + a stride-1 convolution. Rerun this
after a torch upgrade: each case runs in its own process, so a crash shows as a non-zero
return code instead of ending the check.

Usage: PYTHON -m pip install torch==2.11.0; PYTHON scripts/check_onednn_strided_1x1.py
Prints one line per (input channels, threads): "ok" or the signal that ended the process.
On this project's CPU (2026-11-27, torch 2.11.0): 4, 8 and 12 input channels crash,
16, 24, 40, 64, 96 and 192 do not.
"""
import itertools
import subprocess
import sys

CASE = """
import sys, torch
cin, threads = map(int, sys.argv[1:3])
torch.set_num_threads(threads)
for cout, size, batch in [(16, 64, 4), (48, 80, 16), (96, 40, 16), (2 * cin, 128, 8), (2 * cin, 256, 2)]:
    conv = torch.nn.Conv2d(cin, cout, 1, 2, 0, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(batch, cin, size, size).to(memory_format=torch.channels_last).requires_grad_()
    conv(x).square().mean().backward()
"""

for cin, threads in itertools.product([4, 8, 12, 16, 24, 40, 64, 96, 192], [1, 2]):
    rc = subprocess.run([sys.executable, "-c", CASE, str(cin), str(threads)], capture_output=True).returncode
    print(f"{cin:4d} input channels, {threads} thread(s): " + ("ok" if rc == 0 else f"crashed (return code {rc})"), flush=True)
