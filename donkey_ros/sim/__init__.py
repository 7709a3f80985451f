"""The built-in simulator: tracks, car physics, camera renderer, expert driver (no rclpy here)."""
