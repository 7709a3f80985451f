"""Pictures of a drive: the track from above with the driven path (``donkey-ros loop``, the style
experiment)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from donkey_ros.apps.drive_model import DriveResult


def plot_drive(result: DriveResult, track, path: str | Path, title: str = '') -> Path:
    """The track and the driven path coloured by |cross-track error|, off-track events marked."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    s = np.linspace(0.0, track.length, max(200, int(track.length / 0.05)), endpoint=False)
    centre = np.array([track.point_at(v) for v in s])
    heading = np.array([track.heading_at(v) for v in s])
    normal = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
    half = track.road_width / 2
    figure, axis = plt.subplots(figsize=(8, 6))
    for side in (-1, 1):
        edge = centre + side * half * normal
        axis.plot(*np.vstack([edge, edge[:1]]).T, color='black', linewidth=1)
    axis.plot(*np.vstack([centre, centre[:1]]).T, color='goldenrod', linestyle='--',
              linewidth=0.8, label='centre line')
    if result.path:
        xy = np.array(result.path)
        points = axis.scatter(xy[:, 0], xy[:, 1], c=xy[:, 2], s=3, cmap='viridis',
                              vmin=0.0, vmax=half)
        figure.colorbar(points, ax=axis, label='|cross-track error| (m)')
    if result.off_track_at:
        off = np.array(result.off_track_at)
        axis.scatter(off[:, 0], off[:, 1], marker='x', color='red', s=60,
                     label=f'off track ({len(off)})')
    axis.set_aspect('equal')
    axis.set_xlabel('x (m)')
    axis.set_ylabel('y (m)')
    axis.legend(loc='upper right', fontsize=8)
    axis.set_title(title or f'{result.track}: {result.laps} laps, {result.off_track} off-track, '
                            f'mean |cte| {result.mean_abs_cte:.3f} m', fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return Path(path)
