"""Sharing a result on the Hugging Face Hub, with a model card that says how it was made.

The token comes from the environment (HF_TOKEN) or from a notebook login
(`huggingface_hub.notebook_login()`, which stores it where huggingface_hub finds it); dreamkit
passes it on to huggingface_hub and never prints it or writes it into a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.config import TrainConfig
from ..core.errors import DreamkitError

# huggingface_hub: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["model_card", "push_to_hub"]


def model_card(folder, repo_id: str) -> str:
    """README.md for the Hub: base model, every subject with its identifier and prompt, the
    settings, how to load it."""
    folder = Path(folder)
    saved = folder / "config.json"
    cfg = TrainConfig.load(saved) if saved.is_file() else None
    base = cfg.pretrained_model_name_or_path if cfg else "unknown"
    concepts = cfg.resolved_concepts if cfg else []
    lora = (folder / "pytorch_lora_weights.safetensors").is_file()
    prompt = concepts[0].instance_prompt if concepts else ""
    load = (f"pipe = DiffusionPipeline.from_pretrained({base!r})\n"
            f"pipe.load_lora_weights({repo_id!r})") if lora else \
        f"pipe = DiffusionPipeline.from_pretrained({repo_id!r})"
    subjects = "\n".join(
        f"- **{c.identifier}** names {'a subject' if not c.class_noun else f'the {c.class_noun}'}"
        f" of `{Path(c.instance_dir).name}`: prompt *\"{c.instance_prompt}\"*, and add a "
        f"context (*\"{c.instance_prompt} on the beach\"*)" for c in concepts)
    settings = {k: getattr(cfg, k) for k in (
        "max_train_steps", "learning_rate", "train_text_encoder", "with_prior_preservation",
        "prior_loss_weight", "num_class_images", "resolution", "use_lora", "lora_rank",
        "mixed_precision", "seed")} if cfg else {}
    rows = "\n".join(f"| {k} | {v} |" for k, v in settings.items())
    return f"""---
base_model: {base}
library_name: diffusers
tags:
- dreambooth
- dreamkit
{"- lora" + chr(10) if lora else ""}instance_prompt: {prompt}
---

# {repo_id}

DreamBooth fine-tune of `{base}` made with dreamkit. It knows {len(concepts)} subject(s):

{subjects}

```python
from diffusers import DiffusionPipeline
{load}
image = pipe("{prompt} on the beach").images[0]
```

| setting | value |
|---|---|
{rows}
"""


def push_to_hub(folder, repo_id: str, private: bool = True, token: str | None = None) -> str:
    """Upload `folder` (an export or a run) to `repo_id` with a model card; return its URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import HfHubHTTPError

    folder = Path(folder)
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise DreamkitError("push_to_hub: HF_HUB_OFFLINE=1 is set, so nothing can be uploaded; "
                            "unset it on a machine with network access")
    card = folder / "README.md"
    if not card.exists():
        card.write_text(model_card(folder, repo_id))
    api = HfApi(token=token or os.environ.get("HF_TOKEN"))  # None: the notebook login
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder),
                          ignore_patterns=["checkpoints/*", "class_images/*", "*.pt"])
    except Exception as e:  # refused, or no network: the HTTP library's errors (not OSError)
        network = {"HTTPError", "RequestError", "TransportError", "ConnectionError"} & \
            {c.__name__ for c in type(e).__mro__}
        if not (isinstance(e, (HfHubHTTPError, OSError)) or network):
            raise
        why = (str(e).splitlines() or [type(e).__name__])[0]
        hint = "the network cannot be reached: check the connection and try again" \
            if network and not isinstance(e, HfHubHTTPError) else \
            "check that you are logged in (HF_TOKEN or notebook_login) with write access"
        raise DreamkitError(f"push_to_hub to {repo_id!r} failed ({why}); {hint}; the export in "
                            f"{folder} is complete and can be uploaded later") from None
    return str(url)
