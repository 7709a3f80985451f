"""`donkey-ros benchmark --quick`: the report's structure (a smoke run; the suite is a bench)."""
import json

from donkey_ros.apps import benchmark
from donkey_ros.learning.pilot_node import DEFAULT_MODEL


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

