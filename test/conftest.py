"""Test set-up: DDS traffic stays on this machine and apart from other test runs."""
import os
import sys

# Before anything imports rclpy: one DDS domain per pytest process, localhost only.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ['ROS_DOMAIN_ID'] = str(os.getpid() % 90 + 10)

sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402


@pytest.fixture
def graph():
    """A live rclpy graph in a fresh namespace, spun in a background thread."""
    from rosgraph import RosGraph

    with RosGraph() as ros_graph:
        yield ros_graph
