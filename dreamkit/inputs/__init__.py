"""inputs: what training reads: the subject's photos, the class images, the cached latents.

    photos.py          finding, opening and fitting photos; the dataset of photos and class images
    loader.py          the dataset built from a run's subjects, its notes, the order of batches
    buckets.py         aspect-ratio buckets: photos at their own shape, one bucket per batch
    prior.py           class images drawn by the frozen model (prior preservation, §3.3)
    cache.py           latents and text states per batch, cached when nothing that feeds them trains
    doctor.py          the photo doctor: blur, size, duplicates, rotation, crop, ...
    photo_measures.py  the doctor's measures of one photo
"""
