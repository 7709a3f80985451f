"""Where the car keeps its data: one absolute per-user folder, whatever directory it starts in.

``ros2 launch`` (or a systemd service) can start in any directory, so nothing the car writes by
default is relative to the current directory. The data folder is, in order:

1. ``$DONKEY_ROS_DATA`` when set;
2. ``$XDG_DATA_HOME/donkey_ros`` when ``XDG_DATA_HOME`` is set;
3. ``~/.local/share/donkey_ros``.

Bags go to ``<data folder>/bags`` (the recorder's ``folder`` parameter overrides it), the web
controller's token to ``<data folder>/web_token`` (its ``token_file`` parameter overrides it).
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = 'DONKEY_ROS_DATA'
BAGS = 'bags'
WEB_TOKEN = 'web_token'


def data_folder(environ: dict | None = None) -> Path:
    """The car's data folder (absolute; not created here)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR):
        folder = Path(env[ENV_VAR]).expanduser()
    elif env.get('XDG_DATA_HOME'):
        folder = Path(env['XDG_DATA_HOME']).expanduser() / 'donkey_ros'
    else:
        folder = Path(env.get('HOME') or Path.home()).expanduser() / '.local' / 'share' / \
            'donkey_ros'
    return folder.absolute()


def resolve(value: str | os.PathLike, default_name: str, environ: dict | None = None) -> Path:
    """A path parameter: ``''`` = ``<data folder>/default_name``; otherwise the value made absolute
    (``~`` expanded; a relative value is relative to the current directory, as the user typed it).
    """
    if not str(value or ''):
        return data_folder(environ) / default_name
    return Path(value).expanduser().absolute()


def bags_folder(value: str | os.PathLike = '', environ: dict | None = None) -> Path:
    """Where bags are recorded: the recorder's ``folder`` parameter, or ``<data folder>/bags``."""
    return resolve(value, BAGS, environ)
