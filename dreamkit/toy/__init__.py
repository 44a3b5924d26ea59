"""The CPU toy world: pictures whose content is known exactly, a base model the project trains
itself, a subject that model has never seen, and an oracle that scores generated pictures.

    world.py     the renderer and its vocabulary (shapes, colours, contexts, the subject)
    oracle.py    reads a picture back: context, colour, subject or not
    metrics.py   subject fidelity, prompt fidelity, class drift, class diversity
    pretrain.py  `dreamkit toy pretrain`: the base model, trained from scratch on a CPU
    assets.py    where the committed base model and subject photos live
    tokenizer.py the toy world's word-level vocabulary as a CLIP tokenizer
    scorer.py    the oracle as a scorer of the evaluation layer's API
    report.py    the classroom's comparison chart
    demo.py      `dreamkit demo`: the whole DreamBooth run on the toy world
"""

from .assets import base_model_dir, subject_photos_dir, write_subject_photos

__all__ = ["base_model_dir", "subject_photos_dir", "write_subject_photos"]
