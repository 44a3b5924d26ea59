"""outputs: what a trained model gives back: pictures, exports, the Hub, grids to look at.

    sample.py  pictures at fixed seeds (during training and after), saved with their settings
    export.py  the model for other tools: diffusers folder, LoRA files, one .safetensors
    hub.py     push to the Hugging Face Hub with a model card
    viewer.py  image grids with labels, loss curves, figures as pictures
"""
