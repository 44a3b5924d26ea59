"""training: the DreamBooth loop. Read loop.py first: `train` names its stages.

    loop.py   train(): one loop, two step modes, extras on switches
    run.py    the run: processes, folder, resume point, what it tells the user
    step.py   one step's losses and gradients, in one pass or two
    loss.py   the denoising loss, its target (epsilon or v), and divergence checks
    optim.py  AdamW (8-bit or not), the update inside backward, LoRA or full, the schedule
"""
