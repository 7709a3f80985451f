"""`donkey-ros evaluate MODEL BAG...`: how far a model's steering and throttle are from what was
recorded, on bags it was not trained on.

    donkey-ros evaluate models/pilot.tflite data/heldout_bag [--plot pilot_eval.png]

Every frame the dataset reader pairs with a command goes through the model exactly as in the pilot
(LiteRT, same crop/resize/normalization). Prints the mean absolute error, RMSE and correlation of
steering and throttle, overall and per bag, and draws predicted vs recorded steering (and throttle)
over time as a PNG.
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.common.progress import progress_bar
from donkey_ros.learning.metadata import ModelError
from donkey_ros.recording.bag_info import add_filter_arguments, filters_from


class EvaluateError(DonkeyRosError):
    """A bad ``donkey-ros evaluate`` option (e.g. a plot path that cannot be written)."""


@dataclass
class Evaluation:
    """Predictions next to the recorded commands, per frame."""

    model: str
    times: np.ndarray          # s since the first frame of each bag's own start
    bags: np.ndarray           # bag index per frame
    bag_names: list
    steering: np.ndarray       # recorded
    throttle: np.ndarray
    predicted_steering: np.ndarray
    predicted_throttle: np.ndarray
    counts: dict = field(default_factory=dict)

    def errors(self, mask: np.ndarray | None = None) -> dict:
        mask = np.ones(len(self.steering), bool) if mask is None else mask
        result = {'frames': int(mask.sum())}
        for name, truth, guess in (('steering', self.steering, self.predicted_steering),
                                   ('throttle', self.throttle, self.predicted_throttle)):
            t, g = truth[mask], guess[mask]
            diff = g - t
            result[f'{name}_mae'] = float(np.mean(np.abs(diff))) if len(t) else math.nan
            result[f'{name}_rmse'] = float(np.sqrt(np.mean(diff ** 2))) if len(t) else math.nan
            result[f'{name}_corr'] = (float(np.corrcoef(t, g)[0, 1])
                                      if len(t) > 1 and t.std() > 0 and g.std() > 0 else math.nan)
        return result


def evaluate(model: str | Path, bags, filters: dict | None = None, threads: int = 1,
             progress: bool = True) -> Evaluation:
    """Runs ``model`` on every usable frame of ``bags``.

    Raises:
        ModelError: the model cannot be loaded or does not take these frames.
        DatasetError: a bag cannot be read.
    """
    from donkey_ros.learning.inference import ModelRunner
    from donkey_ros.recording.dataset import open_dataset

    runner = ModelRunner(model, threads=threads)
    dataset = open_dataset(bags, **(filters or {}))
    names: dict[str, int] = {}
    starts: dict[str, int] = {}
    rows = []
    bar = progress_bar('evaluating', 'frames') if progress else None
    try:
        for sample in dataset:
            try:
                steering, throttle = runner.predict(sample.image)
            except ModelError as error:
                raise ModelError(f'{sample.bag}: {error}') from None
            index = names.setdefault(sample.bag, len(names))
            start = starts.setdefault(sample.bag, sample.stamp_ns)
            rows.append(((sample.stamp_ns - start) * 1e-9, index, sample.steering,
                         sample.throttle, min(1.0, max(-1.0, steering)),
                         min(1.0, max(-1.0, throttle))))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if not rows:
        raise ModelError(f'no usable frames in {", ".join(map(str, bags))} '
                         f'({dataset.counts.as_dict()})')
    table = np.array(rows, dtype=np.float64)
    return Evaluation(Path(model).name, table[:, 0], table[:, 1].astype(int), list(names),
                      table[:, 2], table[:, 3], table[:, 4], table[:, 5],
                      dataset.counts.as_dict())


def plot(evaluation: Evaluation, path: str | Path) -> Path:
    """Predicted vs recorded steering (top) and throttle (bottom) over time, bags side by side."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 1, figsize=(12, 6), sharex=True,
                                gridspec_kw={'height_ratios': [2, 1]})
    offset, ticks = 0.0, []
    for index, name in enumerate(evaluation.bag_names):
        mask = evaluation.bags == index
        t = evaluation.times[mask] + offset
        for axis, truth, guess in ((axes[0], evaluation.steering, evaluation.predicted_steering),
                                   (axes[1], evaluation.throttle, evaluation.predicted_throttle)):
            axis.plot(t, truth[mask], color='tab:blue', linewidth=1,
                      label='recorded' if index == 0 else None)
            axis.plot(t, guess[mask], color='tab:orange', linewidth=1, alpha=0.85,
                      label='model' if index == 0 else None)
        ticks.append((offset, Path(name).name))
        offset = (t.max() if len(t) else offset) + 2.0
        for axis in axes:
            axis.axvline(offset - 1.0, color='grey', linewidth=0.5)
    errors = evaluation.errors()
    axes[0].set_ylabel('steering (+ = left)')
    axes[0].set_title(f"{evaluation.model}: steering MAE {errors['steering_mae']:.3f}, "
                      f"RMSE {errors['steering_rmse']:.3f}, r {errors['steering_corr']:.2f} on "
                      f"{errors['frames']} frames", fontsize=10)
    axes[1].set_ylabel('throttle')
    axes[1].set_xlabel('time (s); bags: ' + ', '.join(name for _, name in ticks))
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(loc='upper right', fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return Path(path)


PLOT_SUFFIXES = ('.png', '.pdf', '.svg', '.jpg', '.jpeg')


def plot_path(text: str | None, model: str | Path) -> Path:
    """Where ``--plot`` writes: ``MODEL_STEM.evaluate.png`` here (None), inside a folder given
    as the path, or the path itself (``.png`` added when it has no extension).

    Raises:
        EvaluateError: an extension matplotlib does not write, or a folder that does not exist.
    """
    name = f'{Path(model).stem}.evaluate.png'
    if text is None:
        return Path(name)
    path = Path(text).expanduser()
    if path.is_dir() or text.endswith(('/', os.sep)):
        if not path.is_dir():
            raise EvaluateError(f'--plot {text}: folder {path} does not exist')
        return path / name
    if not path.suffix:
        path = path.with_name(path.name + '.png')
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise EvaluateError(f"--plot {text}: '{path.suffix}' is not a picture format "
                            f"({', '.join(PLOT_SUFFIXES)})")
    if not path.parent.is_dir():
        raise EvaluateError(f'--plot {text}: folder {path.parent} does not exist')
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog='donkey-ros evaluate', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='the .tflite model')
    parser.add_argument('bags', nargs='+', help='held-out bag directories, folders, .mcap files')
    parser.add_argument('--plot', default=None,
                        help='picture to write (default: MODEL_STEM.evaluate.png here; a folder: '
                        'that name inside it; no extension: .png added)')
    add_filter_arguments(parser)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    picture = plot_path(args.plot, args.model)   # refused before the work, not after
    result = evaluate(args.model, args.bags, filters_from(args), args.threads)
    errors = result.errors()
    print(f"{result.model} on {errors['frames']} frames of {len(result.bag_names)} bag(s):")
    print(f"  steering: MAE {errors['steering_mae']:.4f}, RMSE {errors['steering_rmse']:.4f}, "
          f"correlation {errors['steering_corr']:.3f}")
    print(f"  throttle: MAE {errors['throttle_mae']:.4f}, RMSE {errors['throttle_rmse']:.4f}, "
          f"correlation {errors['throttle_corr']:.3f}")
    if len(result.bag_names) > 1:
        for index, name in enumerate(result.bag_names):
            part = result.errors(result.bags == index)
            print(f"  {Path(name).name}: {part['frames']} frames, steering MAE "
                  f"{part['steering_mae']:.4f}, throttle MAE {part['throttle_mae']:.4f}")
    print(f'wrote {plot(result, picture)}')
    return 0
