"""storage: the run folder's format, so that a cut-off run resumes exactly.

    checkpoint.py  checkpoints (weights, optimizer, schedule, progress) written atomically,
                   checked by content, pruned, found again
    files.py       files flushed to disk and hashed as they are written
    lock.py        one training run per folder: a lock naming its process, stale ones taken over
    rng.py         every random generator's state, saved and put back
"""
