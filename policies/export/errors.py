"""The export package's one error type, in a module of its own so every part can raise it without
importing the package's ``__init__`` (which stays torch-free for the robot-side runtime)."""


class ExportError(ValueError):
    """The checkpoint, its run config or the request cannot be exported; the message says why."""
