"""Style transfer keeps to a memory budget (issue 13): a request over the budget is refused with
the size that fits, requests that do not fit next to running ones wait their turn (or are
refused when too many wait), and the memory of a large request goes back to the system."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from rclpy.parameter import Parameter

from donkey_ros.style.budget import MB, MemoryBudget
from donkey_ros.style.errors import StyleError
from donkey_ros.style.networks import MultiStyleNetwork
from donkey_ros.style.stylizer import DEFAULT_BUDGET_MB, Stylizer

ROOT = Path(__file__).resolve().parents[1]


def test_a_request_over_the_whole_budget_is_refused_with_what_fits():
    with Stylizer(warmup=(), memory_budget_mb=128) as stylizer:
        frame = np.zeros((120, 160, 3), np.uint8)
        with pytest.raises(StyleError, match=r'640x480 needs about \d+ MB, more than the memory '
                           r'budget of 128 MB \(memory_budget_mb\); at most (\d+)x(\d+) fits'
                           ) as refused:
            stylizer.stylize(frame, 'style7', size=(640, 480))
        w, h = (int(v) for v in refused.value.args[0].rsplit('at most ', 1)[1].split()[0]
                .split('x'))
        assert MultiStyleNetwork.work_bytes(w, h) <= 128 * MB < \
            MultiStyleNetwork.work_bytes(w + 20, h + 15)
        assert stylizer.stylize(frame, 'style7', size=(w, h)).shape == (h, w, 3)
        assert stylizer.budget.refused == 1 and stylizer.budget.reserved == 0
    # The default fits a 4 GB Pi: the largest request the node allows (2048x2048) is over it.
    assert not MemoryBudget(DEFAULT_BUDGET_MB * MB).fits(MultiStyleNetwork.work_bytes(2048, 2048))
    assert MemoryBudget(DEFAULT_BUDGET_MB * MB).fits(MultiStyleNetwork.work_bytes(640, 480))


def test_requests_that_do_not_fit_together_wait_their_turn():
    budget = MemoryBudget(100 * MB, timeout=60.0, max_waiting=1)
    running, release, order = threading.Event(), threading.Event(), []

    def big(name):
        with budget.reserve(80 * MB, name):
            order.append(f'{name} runs')
            running.set()
            release.wait(30)
        order.append(f'{name} done')

    first = threading.Thread(target=big, args=('first',))
    first.start()
    assert running.wait(10)
    with budget.reserve(20 * MB, 'small'):          # fits next to the running one
        order.append('small runs')
    running.clear()
    second = threading.Thread(target=big, args=('second',))
    second.start()
    assert wait_until(lambda: budget.waiting == 1)
    with pytest.raises(StyleError, match='busy: third needs about 80 MB .* too many requests'):
        with budget.reserve(80 * MB, 'third'):
            pass
    release.set()
    first.join(10)
    second.join(10)
    assert order == ['first runs', 'small runs', 'first done', 'second runs', 'second done']
    assert budget.queued == 1 and budget.refused == 1 and budget.reserved == 0


def test_a_wait_longer_than_the_timeout_is_refused():
    budget = MemoryBudget(100 * MB, timeout=0.05, max_waiting=2)
    with budget.reserve(90 * MB, 'first'):
        with pytest.raises(StyleError, match=r'waited 0.05 s \(queue_timeout\)'):
            with budget.reserve(90 * MB, 'second'):
                pass
    with budget.reserve(90 * MB, 'third'):          # the budget is free again
        assert budget.reserved == 90 * MB


def wait_until(predicate, timeout=10.0):
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        event.wait(0.01)
    return predicate()


MEASURE = r'''
import json, sys
import numpy as np
def rss():
    values = {}
    for line in open('/proc/self/status'):
        key, _, rest = line.partition(':')
        if key in ('VmRSS', 'VmHWM'):
            values[key] = int(rest.split()[0]) * 1024
    return values
from donkey_ros.style.stylizer import Stylizer
stylizer = Stylizer(warmup=[(160, 120)], threads=1, memory_budget_mb=0)
image = np.random.default_rng(0).integers(0, 255, (1024, 1024, 3), np.uint8)
before = rss()['VmRSS']
stylizer.stylize(image, 'style7')
after = rss()
print(json.dumps({'before': before, 'after': after['VmRSS'], 'peak': after['VmHWM']}))
'''


def test_the_memory_of_a_large_request_goes_back(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    done = subprocess.run([sys.executable, '-c', MEASURE], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    import json
    m = json.loads(done.stdout)
    used = m['peak'] - m['before']
    held = m['after'] - m['before']
    assert used > 300 * MB                          # the request really needed that much
    assert held < used / 2, f'{held / MB:.0f} MB of {used / MB:.0f} MB still held'


def test_the_node_refuses_over_its_budget_and_reports_it(graph):
    from diagnostic_msgs.msg import DiagnosticArray
    from donkey_ros_interfaces.srv import Stylize
    from donkey_ros.common.image import array_to_image
    from donkey_ros.style.style_node import StyleTransferNode

    node = graph.add(StyleTransferNode, parameter_overrides=[
        Parameter('memory_budget_mb', value=100), Parameter('warmup_sizes', value=['64x48'])])
    client = graph.node('client').create_client(Stylize, f'{graph.namespace}/stylize')
    assert client.wait_for_service(timeout_sec=20)
    diagnostics = graph.collect(DiagnosticArray, '/diagnostics')

    def call(width, height):
        request = Stylize.Request(style='style3', strength=1.0, width=width, height=height)
        array_to_image(np.zeros((48, 64, 3), np.uint8), msg=request.image)
        future = client.call_async(request)
        assert graph.wait_for(future.done, 60)
        return future.result()

    refused = call(1024, 768)
    assert not refused.success
    assert 'more than the memory budget of 100 MB' in refused.message
    assert 'fits' in refused.message
    assert call(128, 96).success
    assert node.stylizer.budget.reserved == 0

    def reported():
        for array in diagnostics:
            for entry in array.status:
                values = {v.key: v.value for v in entry.values}
                if entry.name.endswith('style_transfer') and values.get(
                        'refused_for_memory') == '1':
                    return values
        return None
    assert graph.wait_for(reported, 5)
    assert reported()['memory_budget_mb'] == '100' and int(reported()['rss_mb']) > 0
