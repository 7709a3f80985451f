"""The style_transfer node in a process of its own and a client in this one, for the style benches.

    with style_service('/bench123', ['threads:=1'], stdout=subprocess.DEVNULL) as (process, call):
        ...

Starts the node as deployed (``python -m donkey_ros.style.style_node``) in namespace ``namespace``
with ``-p`` parameters ``params``; inits rclpy in this process with one client node; on leaving,
destroys the client, shuts rclpy down and stops the node with SIGINT (as ``ros2 launch`` does).
"""
from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterator


@dataclass
class StyleService:
    process: subprocess.Popen
    node: object      # rclpy Node of this process
    client: object    # rclpy Client for the node's `stylize` service
    executor: object  # SingleThreadedExecutor spinning `node`


@contextlib.contextmanager
def style_service(namespace: str, params: list[str], client_name: str,
                  **popen) -> Iterator[StyleService]:
    import rclpy
    from donkey_ros_interfaces.srv import Stylize
    from rclpy.executors import SingleThreadedExecutor

    command = [sys.executable, '-m', 'donkey_ros.style.style_node', '--ros-args',
               '-r', f'__ns:={namespace}']
    for param in params:
        command += ['-p', param]
    process = subprocess.Popen(command, **popen)
    rclpy.init()
    node = rclpy.create_node(client_name, namespace=namespace)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        yield StyleService(process, node, node.create_client(Stylize, 'stylize'), executor)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
