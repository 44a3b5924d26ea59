"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2`.

Parses the same arguments as `dreamkit train` and trains; each rank then writes a fingerprint of
its final UNet weights so the test can check that the ranks agree.
"""

import hashlib
import os
import sys
from pathlib import Path

from dreamkit.training.loop import train
from dreamkit.ui.cli import build_parser
from dreamkit.ui.commands import config_from as _config_from

args = build_parser().parse_args(["train"] + sys.argv[1:])
result = train(_config_from(args), callbacks=[])
h = hashlib.sha256()
for name, tensor in sorted(result.unet.state_dict().items()):
    h.update(name.encode())
    h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
rank = int(os.environ.get("RANK", "0"))
out = Path(result.output_dir) / f"rank{rank}.txt"
out.write_text(f"{result.num_processes} {h.hexdigest()} {result.history[-1]['step']}\n")
