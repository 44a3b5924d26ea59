"""Plans made once: a measured step is kept by everything it depends on, and reused.

Planning runs the real step on the meta device (seconds for SD 1.5, tens of seconds for SDXL
at 1024 px). Its figures depend only on the model's configs, the settings that change shapes
or what is kept in memory (PLAN_FIELDS), the step mode and the library versions, so the second
`dreamkit train` with the same model and settings (after a Colab disconnect, a changed step
count or learning rate) reuses them: in this process, and from a small JSON file per plan in
DREAMKIT_CACHE (default ~/.cache/dreamkit/plans). A plan of a model that could not be read here
(planned from dreamkit's shipped configs) is kept in this process only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["PLAN_FIELDS", "plan_key", "cached_measure", "cache_dir"]

# The TrainConfig fields a planned step reads (planner._measure and memory.full_step_peak)
PLAN_FIELDS = ("pretrained_model_name_or_path", "resolution", "train_batch_size",
               "with_prior_preservation", "use_lora", "lora_rank", "lora_alpha",
               "lora_target_modules", "gradient_checkpointing", "optimizer_in_backward",
               "use_8bit_adam", "cache_latents", "precompute_text_embeddings",
               "train_text_encoder", "mixed_precision")
_MEMO: dict = {}
_MEASURING_CODE = ("planning/planner.py", "planning/memory.py", "planning/shapes.py",
                   "training/step.py", "training/loss.py", "training/optim.py", "models/lora.py",
                   "core/precision.py")


def cache_dir() -> Path:
    return Path(os.environ.get("DREAMKIT_CACHE") or Path.home() / ".cache" / "dreamkit") / "plans"


def _model_fingerprint(model: str) -> str:
    """A local model's part configs (their text), or the hub id itself."""
    folder = Path(model).expanduser()
    texts = [(folder / part / "config.json").read_text()
             for part in ("unet", "vae", "text_encoder", "text_encoder_2")
             if (folder / part / "config.json").is_file()]
    return hashlib.sha256("\n".join(texts).encode()).hexdigest() if texts else model


def _code_fingerprint() -> str:
    """The code that measures a step: a changed dreamkit (an upgrade, an edit) plans anew."""
    root = Path(__file__).resolve().parents[1]
    return hashlib.sha256(b"".join((root / f).read_bytes() for f in _MEASURING_CODE)).hexdigest()


def plan_key(config, mode: str) -> str:
    import diffusers
    import torch

    what = {f: getattr(config, f) for f in PLAN_FIELDS}
    what.update(mode=mode, model=_model_fingerprint(config.pretrained_model_name_or_path),
                versions=[torch.__version__, diffusers.__version__], code=_code_fingerprint())
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def cached_measure(config, mode: str, count: bool, measure) -> tuple[dict, int | None, str]:
    """measure(config, mode, count) -> (parts, flops, assumed), made once per key. A kept
    plan without a FLOP count serves a request without one only."""
    key = plan_key(config, mode)
    path = cache_dir() / f"{key}.json"
    kept = _MEMO.get(key)
    if kept is None and path.is_file():
        try:
            kept = tuple(json.loads(path.read_text()))
        except (OSError, ValueError):
            kept = None  # a damaged file: measured again, and replaced
    if kept is None or (count and kept[1] is None):
        kept = measure(config, mode, count)
        if not kept[2]:  # read from the model itself: worth keeping on disk
            _write(path, kept)
    _MEMO[key] = kept
    return kept[0], kept[1], kept[2]


def _write(path: Path, kept) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(list(kept)))
        tmp.replace(path)  # atomic: two processes planning at once each write a whole file
    except OSError:
        pass  # a read-only or full cache folder only costs the next plan its time
