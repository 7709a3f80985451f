"""Data at scale (`donkey-ros dataset`, apps/record.py): expert recordings on generated tracks in
randomized looks, with recoveries, written as ordinary bags the dataset reader takes."""
import numpy as np
import pytest

from donkey_ros.apps import benchmark, dataset
from donkey_ros.apps.record import record_expert
from donkey_ros.common.errors import ConfigError
from donkey_ros.recording.dataset import open_dataset


def samples(path):
    return list(open_dataset([path]))


def test_dataset_writes_clean_and_recovery_bags_in_new_looks(tmp_path, capsys):
    out = tmp_path / 'data'
    assert dataset.main(['--out', str(out), '--tracks', '1', '--seed', '3', '--every', '4',
                         '--workers', '1']) == 0
    assert 'x real time' in capsys.readouterr().out
    assert (out / 'tracks' / 'gen_3.yaml').is_file()
    clean, recover = sorted((out / 'bags').iterdir())
    assert clean.name == 'gen_3_00_clean' and recover.name == 'gen_3_01_recover'
    a, b = samples(clean), samples(recover)
    assert len(a) > 50 and len(b) > 50
    # Two looks: the first frames (car at rest on the start line) differ.
    assert np.abs(a[0].image.astype(int) - b[0].image.astype(int)).mean() > 10
    cte = [np.abs([s.truth['cross_track_error'] for s in x]) for x in (a, b)]
    assert cte[1].max() > 2 * cte[0].max()  # the recovery run leaves the line...
    steer = [np.array([s.steering for s in x]) for x in (a, b)]
    assert steer[1].std() > steer[0].std()  # ...and the expert steers back


def test_dataset_refuses_the_benchmarks_seeds(tmp_path):
    with pytest.raises(ConfigError, match='held-out'):
        dataset.main(['--out', str(tmp_path), '--tracks', '5', '--seed', '8998'])
    assert dataset.MAX_SEED < benchmark.HELD_OUT_SEED


def test_kicks_throw_the_car_off_its_line_and_labels_stay_the_experts(tmp_path):
    plain = record_expert(tmp_path / 'plain', 'oval', laps=1, weave_seed=1)
    kicked = record_expert(tmp_path / 'kicked', 'oval', laps=1, weave_seed=1, kicks=3.0)
    a, b = samples(plain.path), samples(kicked.path)
    worst = [max(abs(s.truth['cross_track_error']) for s in x) for x in (a, b)]
    assert worst[1] > worst[0] + 0.1
    # The recorded command is the expert's answer: back towards the centre line (left of the
    # line -> steer right), where the car was pushed off.
    off = [s for s in b if abs(s.truth['cross_track_error']) > 0.2]
    assert off and np.mean([np.sign(s.steering) == -np.sign(s.truth['cross_track_error'])
                            for s in off]) > 0.8


def test_a_driver_drives_while_the_expert_labels(tmp_path):
    def stubborn(frame):  # a poor pilot: always a little left
        return 0.35, 0.5
    rec = record_expert(tmp_path / 'dagger', 'oval', laps=1, weave_seed=2, driver=stubborn,
                        driver_share=0.7)
    b = samples(rec.path)
    right = [s for s in b if s.truth['cross_track_error'] > 0.15]  # pushed left by the driver
    assert right and np.mean([s.steering < 0.2 for s in right]) > 0.8
    assert rec.laps == 1
