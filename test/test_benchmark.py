"""`donkey-ros benchmark --quick`: the report's structure (a smoke run; the suite is a bench)."""
import json

import pytest

from donkey_ros.apps import benchmark
from donkey_ros.learning.pilot_node import DEFAULT_MODEL

ACCEPTANCE_SEED = 9007  # a held-out generated track


def test_quick_benchmark_writes_table_json_and_picture(tmp_path, capsys):
    model = str(DEFAULT_MODEL)
    out = tmp_path / 'bench'
    assert benchmark.main([model, '--quick', '--speeds', '1', '--out', str(out)]) == 0
    data = json.loads((out / 'benchmark.json').read_text())
    runs = data['runs']
    assert [(r['name'], r['look']) for r in runs] == [
        (name, look) for name in ('oval', 'gen_9000', 'gen_9001') for look in ('normal', 'other')]
    for run in runs:
        assert run['laps'] == 1 and run['speed'] == 1.0 and run['expert_lap'] > 0
        assert run['km'] > 0 and run['off_per_km'] >= 0 and run['mean_abs_cte'] >= 0
    assert set(data['summary']) == {'normal 1x', 'other 1x'}
    table = (out / 'benchmark.md').read_text()
    assert '| track | length m | normal 1x | other 1x |' in table
    assert all(f'| {name} |' in table for name in ('oval', 'gen_9000', 'gen_9001'))
    assert (out / 'benchmark.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert (out / 'tracks' / 'gen_9000.yaml').is_file()
    assert 'wrote' in capsys.readouterr().out



@pytest.mark.slow
def test_shipped_model_laps_a_new_track_in_a_look_never_trained_on(tmp_path):
    """Acceptance: a generated track from the held-out seeds, in a randomized look drawn from a
    seed no training run uses (recoloured road, floor, sky and markings; other lighting;
    objects on the floor), and the shipped model drives a lap of it with 0 off-track events."""
    from donkey_ros.apps.drive_model import drive_model

    from donkey_ros.sim.generate import generate_track, track_yaml

    data, _ = generate_track(ACCEPTANCE_SEED)
    track = tmp_path / 'track.yaml'
    track.write_text(track_yaml(data))
    settings = benchmark.look_settings(str(track), 'other', benchmark.LOOK_SEED + 99)
    result = drive_model(str(DEFAULT_MODEL), track=str(track), laps=1, settings=settings)
    assert result.laps == 1 and not result.stopped_early
    assert result.off_track == 0, result.summary()
