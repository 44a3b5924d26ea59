"""core: what every other layer may use, and which uses nothing of dreamkit above it.

    config.py     TrainConfig: every knob, its reason, and its one validation
    concepts.py   one or several subjects, each resolved to photos, prompts and class images
    prompts.py    prompt templates ({token}, {class}), captions, the paper's evaluation prompts
    checks.py     the other commands' flags, checked as TrainConfig checks its own
    errors.py     DreamkitError and its kinds: one line naming the setting, value and fix
    callbacks.py  how the loop speaks (on_step, on_message, ...): it never prints
    env.py        the machine: GPU or CPU, precision, 8-bit AdamW, `dreamkit env`
    noise.py      library messages hidden when dreamkit is imported
"""
