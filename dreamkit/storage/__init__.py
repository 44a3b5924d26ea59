"""storage: the run folder's format, so that a cut-off run resumes exactly.

    checkpoint.py  checkpoints (weights, optimizer, schedule, progress) written atomically,
                   checked by content, pruned, found again
    rng.py         every random generator's state, saved and put back
"""
