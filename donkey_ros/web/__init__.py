"""The web controller: a phone-friendly page to watch the camera and steer the car.

``server.py`` is the aiohttp server (no rclpy), ``access.py`` decides who may use it,
``protocol.py`` reads the page's messages and holds the joystick deadman, ``web_node.py`` is the
ROS glue (``WebNode``).
"""
