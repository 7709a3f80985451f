"""The web controller's token, the same on every launch: stored once in the data folder.

A server on the network needs a token (``access.py``). Where it comes from, in order:
the ``token`` parameter, ``$DONKEY_ROS_WEB_TOKEN``, the token file (``token_file`` parameter,
default ``<data folder>/web_token``), or a new token written to that file (mode 0600) so the URL
on the phone keeps working after a restart. Delete the file for a new token.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from donkey_ros.common.paths import WEB_TOKEN, resolve
from donkey_ros.web.access import AccessError, generate_token, needs_token

ENV_VAR = 'DONKEY_ROS_WEB_TOKEN'
VALID = re.compile(r'[A-Za-z0-9._~-]{8,256}')
"""What a stored token may be: URL-safe characters (it goes into ``?token=``), 8 or more."""


@dataclass(frozen=True)
class WebToken:
    """The token a server uses and where it came from (for the start-up line).

    Attributes:
        value: the token ('' = none; a loopback server needs none).
        source: 'parameter', 'environment', 'file', 'new' or '' (not needed).
        path: the token file when source is 'file' or 'new'.
    """

    value: str
    source: str = ''
    path: Path | None = None

    def describe(self) -> str:
        if self.source == 'file':
            return f'web token from {self.path} (the same on every launch; delete it for a new one)'
        if self.source == 'new':
            return f'new web token saved in {self.path} (mode 0600; kept for the next launches)'
        if self.source == 'environment':
            return f'web token from ${ENV_VAR}'
        if self.source == 'parameter':
            return 'web token from parameter token'
        return 'no web token needed (this machine only)'


def token_path(value: str = '', environ: dict | None = None) -> Path:
    """The token file: the ``token_file`` parameter, or ``<data folder>/web_token``."""
    return resolve(value, WEB_TOKEN, environ)


def load_or_create(path: Path) -> tuple[str, bool]:
    """The token stored in ``path``, or a new one written there with mode 0600.

    Returns:
        (token, created).
    Raises:
        AccessError: the file cannot be read or written, or holds no usable token.
    """
    path = Path(path)
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        text = None
    except OSError as error:
        raise AccessError(f'cannot read the web token file {path}: {error.strerror}') from None
    if text is not None:
        if not VALID.fullmatch(text):
            raise AccessError(f'web token file {path} holds no usable token (8+ URL-safe '
                              'characters); delete it to make a new one')
        try:
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)  # a token others can read is no password
        except OSError as error:
            raise AccessError(f'web token file {path} is readable by others and cannot be made '
                              f'private: {error.strerror}') from None
        return text, False
    token = generate_token()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another web node wrote it first: use theirs
            return load_or_create(path)
        with os.fdopen(fd, 'w') as file:
            file.write(token + '\n')
    except OSError as error:
        raise AccessError(f'cannot write the web token file {path}: {error.strerror} (set '
                          'parameter token_file or token)') from None
    return token, True


def web_token(host: str, configured: str = '', file: str = '',
              environ: dict | None = None) -> WebToken:
    """The token for a server bound to ``host`` (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    if configured:
        return WebToken(configured, 'parameter')
    if env.get(ENV_VAR):
        return WebToken(env[ENV_VAR], 'environment')
    if not needs_token(host):
        return WebToken('')
    path = token_path(file, env)
    token, created = load_or_create(path)
    return WebToken(token, 'new' if created else 'file', path)
