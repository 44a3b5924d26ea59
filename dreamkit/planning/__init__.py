"""planning: will it fit, how long will it take, how much disk: answered before loading.

    planner.py  plan(config): the peak GPU memory, the step mode for `auto`, the recipes
    memory.py   the real step run on meta tensors: live-tensor peak and FLOPs
    meta_ops.py what an op on meta tensors gives, worked out once per input shapes
    shapes.py   a model's parts as shapes (no weights) from its configs
    space.py    the run's files on Drive: planned, measured, freed
"""
