"""inputs: what training reads: the subject's photos, the class images, the cached latents.

    photos.py          finding, opening and fitting photos; captions; the dataset and its loader
    prior.py           class images drawn by the frozen model (prior preservation, §3.3)
    cache.py           latents and text states per batch, cached when nothing that feeds them trains
    doctor.py          the photo doctor: blur, size, duplicates, rotation, crop, ...
    photo_measures.py  the doctor's measures of one photo
"""
