"""Steering servo and ESC through a PCA9685: PWM mapping, failsafe control, backends, node."""
