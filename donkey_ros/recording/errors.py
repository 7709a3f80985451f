"""The recording package's error: a bag cannot be written, read, repaired or replayed."""
from donkey_ros.common.errors import DonkeyRosError


class BagError(DonkeyRosError):
    """A bag (or a path given as one) cannot be used; the message names the path and the fix."""
