"""evaluation: how good is the result? Subject fidelity, prompt fidelity, class drift.

    evaluate.py  the measures (DINO, CLIP-T, PRES, diversity) with any scorer
    scoring.py   scoring a run against its base model, and while it trains (a callback)
"""
