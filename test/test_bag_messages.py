"""Bags written without ROS agree with each other and with the nodes, and the run statistics.

The loop's expert recordings, synthetic bags and DonkeyCar tub import build their messages in one
place (donkey_ros/recording/messages.py) from one table of topics (donkey_ros/common/topics.py);
read back here by an independent reader (mcap + mcap-ros2-support).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from donkey_ros_interfaces.msg import SimStatus as SimStatusMsg
from rclpy.parameter import Parameter

from donkey_ros.common import topics
from donkey_ros.recording.synthetic import write_synthetic_bag
from donkey_ros.sim.run_stats import RunStats
from donkey_ros.sim.simulator import SimStatus
from test_bag_independent import read_bag, read_metadata


def offered(bag) -> dict:
    """{topic without namespace: (type, offered QoS)} from metadata.yaml."""
    found = {}
    for entry in read_metadata(bag)['topics_with_message_count']:
        meta = entry['topic_metadata']
        relative = next(t for t in topics.TYPES if meta['name'].endswith('/' + t))
        found[relative] = (meta['type'], meta['offered_qos_profiles'])
    return found


def test_offline_writers_offer_the_same_types_and_qos(tmp_path):
    from donkey_ros.apps.record import record_expert
    from donkey_ros.donkeycar.tub_import import import_tubs
    from test_import_tub import write_donkeycar_tub

    loop = record_expert(tmp_path / 'loop', 'oval', laps=1, speed=3.0).path
    synthetic = write_synthetic_bag(tmp_path / 'synthetic', frames=20, with_truth=True,
                                    namespace='car1').path
    tub = write_donkeycar_tub(tmp_path / 'tub', 10)
    import_tubs([tub], tmp_path / 'tub_bag', images='raw', preview=False)
    bags = {name: offered(path) for name, path in
            (('loop', loop), ('synthetic', synthetic), ('tub import', tmp_path / 'tub_bag'))}
    for name, found in bags.items():
        for topic, (msgtype, _) in found.items():
            assert msgtype == topics.TYPES[topic], (name, topic)
    for topic in (topics.IMAGE, topics.USER_CMD, topics.DRIVE_MODE):
        assert bags['loop'][topic] == bags['synthetic'][topic] == bags['tub import'][topic], \
            topic
    assert bags['loop'][topics.SIM_STATUS] == bags['synthetic'][topics.SIM_STATUS]
    latched = bags['synthetic'][topics.DRIVE_MODE][1][0]
    assert (latched['durability'], latched['depth']) == ('transient_local', 1)


def test_offline_qos_is_what_the_simulator_nodes_offer(graph):
    """Reliability and durability as discovery reports them for the live nodes' publishers."""
    from donkey_ros.control.mux_node import MuxNode
    from donkey_ros.recording.messages import offered_qos
    from donkey_ros.sim.expert_node import ExpertNode
    from donkey_ros.sim.sim_node import SimNode

    graph.add(SimNode, parameter_overrides=[Parameter('rate', value=5.0)])
    graph.add(ExpertNode)
    graph.add(MuxNode)
    probe = graph.node()
    wanted = (topics.IMAGE, topics.USER_CMD, topics.CMD, topics.DRIVE_MODE, topics.SIM_STATUS,
              topics.SIM_ODOM, topics.SIM_TRACK)
    infos = {}

    def discovered() -> bool:
        for topic in wanted:
            infos[topic] = probe.get_publishers_info_by_topic(f'{graph.namespace}/{topic}')
        return all(infos.values())
    assert graph.wait_for(discovered, 10)
    for topic in wanted:
        live = infos[topic][0]
        bag = offered_qos(topic)[0]
        assert live.topic_type == topics.TYPES[topic]
        assert live.qos_profile.reliability.name.lower() == bag['reliability'], topic
        assert live.qos_profile.durability.name.lower() == bag['durability'], topic


def test_sim_status_messages_carry_every_field_of_the_core_status(tmp_path):
    fields = SimStatus(laps=2, track='oval', best_lap_time=9.5).message_fields()
    assert set(fields) == set(SimStatusMsg.get_fields_and_field_types()) - {'header'}
    SimStatusMsg(**fields)  # the node's message takes them as they are typed
    bag = write_synthetic_bag(tmp_path / 'bag', frames=10, with_truth=True).path
    decoded = [m for topic, _, _, m in read_bag(bag, decode=True) if topic == '/sim/status']
    assert decoded and decoded[0].track == 'synthetic' and decoded[0].header.frame_id == 'odom'


def status(**values):
    base = dict(cross_track_error=0.0, off_track_count=0, laps=0, last_lap_time=0.0)
    return SimpleNamespace(**{**base, **values})


def test_run_stats_counts_laps_off_track_events_and_cross_track_error():
    stats = RunStats(keep_path=True)
    samples = [
        (status(cross_track_error=0.1), (0.0, 0.0)),
        (status(cross_track_error=-0.3), (1.0, 0.0)),
        (status(cross_track_error=0.2, off_track_count=1), (0.0, 1.0)),   # put back on the road
        (status(cross_track_error=0.0, off_track_count=1, laps=1, last_lap_time=12.5), (0, 2)),
        (status(cross_track_error=0.4, off_track_count=1, laps=1, last_lap_time=12.5), (0, 3)),
    ]
    events = [stats.update(s, p) for s, p in samples]
    assert [(e.lap, e.off_track) for e in events] == [
        (False, False), (False, False), (False, True), (True, False), (False, False)]
    assert stats.laps == 1 and stats.lap_times == [12.5] and stats.off_track == 1
    assert stats.off_track_at == [(1.0, 0.0)]   # the last position sampled before it left
    assert stats.mean_abs_cte == pytest.approx(1.0 / 5)
    assert stats.cte_max == pytest.approx(0.4)
    assert [p[:2] for p in stats.path] == [p for _, p in samples]
    assert RunStats().mean_abs_cte == 0.0
