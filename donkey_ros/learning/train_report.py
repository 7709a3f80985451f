"""A training run's pictures and report: loss curves (``NAME.loss.png``), ``NAME.report.md``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from donkey_ros.learning.training_data import counts_text


def plot_history(history: dict, path: Path, title: str) -> Path:
    """Loss (and steering MAE) per epoch, train vs validation, as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    mae = [k for k in history if 'steering_mae' in k and not k.startswith('val_')]
    figure, axes = plt.subplots(1, 2 if mae else 1, figsize=(10 if mae else 6, 4), squeeze=False)
    epochs = np.arange(1, len(history.get('loss', [])) + 1)
    panels = [('loss', 'loss')] + ([(mae[0], 'steering MAE')] if mae else [])
    for axis, (key, label) in zip(axes[0], panels):
        axis.plot(epochs, history[key], 'o-', label='train')
        if f'val_{key}' in history:
            values = history[f'val_{key}']
            axis.plot(epochs, values, 'o-', label='validation')
            best = int(np.nanargmin(history['val_loss']))
            axis.axvline(best + 1, color='grey', linestyle=':', label=f'best (epoch {best + 1})')
        axis.set_xlabel('epoch')
        axis.set_ylabel(label)
        axis.set_yscale('log')
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(f'{title}: training history')
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def write_report(result, path: Path, summary: dict) -> Path:
    """Writes the markdown report of ``result`` (a ``TrainResult``) to ``path``."""
    meta = result.metadata
    lines = [
        f'# Training report: {result.model_path.name}', '',
        f'- command: `{meta.command}`' if meta.command else '- command: (library call)',
        f'- model: {meta.model_type} {meta.architecture}, input {meta.input_width}x'
        f'{meta.input_height} ({meta.image_width}x{meta.image_height} frames, crop '
        f'{meta.crop_top} top / {meta.crop_bottom} bottom), activation {meta.activation}',
        f'- data: {summary["frames"]} frames, {summary["seconds_of_driving"]} s of driving from '
        f'{len(summary["recordings"])} recording(s); {result.train_frames} train / '
        f'{result.val_frames} validation (contiguous time blocks)',
    ]
    if summary.get('data_path'):
        workers = summary.get('workers', 1)
        where = 'streamed from disk' if summary['data_path'] == 'stream' else 'in memory'
        lines.append(f"- data path: {where} ({summary['data_path']}); {workers} "
                     f"worker{'s' if workers != 1 else ''}, {summary.get('replicas', 1)} "
                     'replica(s)')
    if summary.get('counts'):
        lines.append(f'- reader counts: {counts_text(summary["counts"])}')
    lines += [
        f'- epochs: {result.epochs} (best {result.best_epoch}), validation loss '
        f'{result.val_loss:.5f}',
        f'- validation steering MAE (exported float32 model): {result.val_steering_mae:.4f}; '
        f'throttle MAE {result.val_throttle_mae:.4f}',
    ]
    if result.int8_path:
        lines.append(f'- validation steering MAE (int8 model {result.int8_path.name}): '
                     f'{result.int8_steering_mae:.4f}; throttle MAE '
                     f'{result.int8_throttle_mae:.4f}')
    lines += [f'- wall time: {result.seconds:.1f} s', '',
              f'![loss curves]({result.model_path.with_suffix(".loss.png").name})', '']
    path.write_text('\n'.join(lines))
    return path
