"""The project's base error: something a user can cause and read about in one line."""


class DonkeyRosError(Exception):
    """A user-facing error (bad file, bad parameter, missing hardware).

    Nodes and commands catch it and log its message as one line, without a traceback.
    Each module subclasses it (``TrackError``, ``ConfigError``...) so callers can be specific.
    """


class ConfigError(DonkeyRosError):
    """A parameter or configuration value is invalid."""
