"""The style package's error: a bad request, model file or style folder, in one readable line."""
from donkey_ros.common.errors import DonkeyRosError


class StyleError(DonkeyRosError):
    """A stylization cannot be done: unknown style, bad image or size, unusable model file."""
