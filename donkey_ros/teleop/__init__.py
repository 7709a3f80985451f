"""Teleoperation: joystick (sensor_msgs/Joy), Twist and keyboard to user/cmd."""
