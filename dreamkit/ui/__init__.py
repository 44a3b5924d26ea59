"""ui: the faces: the command line, the notebooks' helpers and their widgets. The only layer
that prints; everything below speaks through callbacks and errors.

    cli.py        the `dreamkit` command and its flags
    commands.py   what each command does
    notebook.py   what the Colab notebooks' cells call (form fields to a TrainConfig)
    colab.py      Drive and uploads, with stand-ins off Colab
    widgets.py    ConfigPanel: controls bound to TrainConfig, messages under them
    live.py       live loss curves and samples while training
    classroom.py  the classroom notebook's panel, Train button and comparison
"""
