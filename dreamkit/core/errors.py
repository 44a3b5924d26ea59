"""The one exception type users see.

Every mistake a user can make (a wrong setting, a bad photo, a missing model) raises
`DreamkitError` with a message that names the setting, the value and the fix. The CLI prints
that message alone, without a traceback; notebooks show it next to the control.
"""

__all__ = ["DreamkitError", "ConfigError", "ImageError", "ModelError"]


class DreamkitError(Exception):
    """A problem the user can fix; the message says how."""


class ConfigError(DreamkitError, ValueError):
    """A TrainConfig field holds a value that cannot work."""

    def __init__(self, field: str, value, fix: str):
        self.field, self.value, self.fix = field, value, fix
        super().__init__(f"{field}={value!r}: {fix}")


class ImageError(DreamkitError):
    """A photo could not be found, read or decoded."""


class ModelError(DreamkitError):
    """A model could not be loaded from the given id or folder."""
