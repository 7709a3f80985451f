"""Recording driving data: the recorder node, bag writing and repair, replay, datasets, cleaning.

Plain cores (no rclpy): ``writer`` (rosbag2 writer, crash-safe), ``metadata`` (metadata.yaml),
``repair``, ``dataset`` (bag -> training samples), ``clean``, ``bag_info``, ``synthetic`` (test
bags). ROS glue: ``recorder_node``, ``replay``.
"""
