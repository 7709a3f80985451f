"""donkey_ros: DonkeyCar's record -> train -> drive loop as ROS 2 nodes."""

__version__ = '0.1.0'
