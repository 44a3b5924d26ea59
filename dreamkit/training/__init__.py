"""training: the DreamBooth loop. Read loop.py first: `train` names its stages.

    loop.py   train(): one loop, two step modes, extras on switches
    run.py       the run: processes, photos, epochs, what it tells the user
    rundir.py    the run folder: checked, resumed only by the same kind of run, one run at a time
    bounds.py    sizes checked against the loaded model (resolution, LoRA rank, free disk)
    step.py      one step's losses and gradients, in one pass or two
    loss.py      the denoising loss, its target (epsilon or v), Min-SNR weights, divergence
    optim.py     AdamW (8-bit or not) or Prodigy, the update inside backward, LoRA or full,
                 the schedule
    trackers.py  report_to: TensorBoard or W&B through accelerate's trackers
"""
