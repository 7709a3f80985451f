"""Test set-up: DDS traffic stays on this machine and apart from other test runs."""
import os
import sys
import tempfile

# Before anything imports rclpy: one DDS domain per pytest process, localhost only.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ['ROS_DOMAIN_ID'] = str(os.getpid() % 90 + 10)
# The car's data folder (bags, web token) is per user; tests never write to the user's.
os.environ['DONKEY_ROS_DATA'] = tempfile.mkdtemp(prefix='donkey_ros_test_data_')
os.environ.pop('DONKEY_ROS_WEB_TOKEN', None)

sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402


@pytest.fixture
def graph():
    """A live rclpy graph in a fresh namespace, spun in a background thread."""
    from rosgraph import RosGraph

    with RosGraph() as ros_graph:
        yield ros_graph
