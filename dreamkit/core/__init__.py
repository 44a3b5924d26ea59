"""core: what every other layer may use, and which uses nothing of dreamkit above it.

    config.py     TrainConfig: every knob and its reason
    validate.py   TrainConfig's one validation: each setting, settings together, readiness
    concepts.py   one or several subjects, each resolved to photos, prompts and class images
    steps.py      what a step and an epoch are (num_train_epochs, repeats)
    prompts.py    prompt templates ({token}, {class}), captions, the paper's evaluation prompts
    checks.py     the rules every face shares: numbers, names, where outputs may go
    errors.py     DreamkitError and its kinds: one line naming the setting, value and fix
    callbacks.py  how the loop speaks (on_step, on_message, ...): it never prints
    env.py        the machine: GPU or CPU, precision, 8-bit AdamW, `dreamkit env`
    noise.py      library messages hidden when dreamkit is imported
"""
