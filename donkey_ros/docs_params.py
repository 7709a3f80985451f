"""`donkey-ros params`: every node's parameters as Markdown, from the nodes' own PARAMS tables."""
from __future__ import annotations

import argparse
import importlib

from donkey_ros.common.params import markdown_table
from donkey_ros.resources import console_scripts


def node_tables() -> dict[str, tuple]:
    """{executable: PARAMS} for every console script whose module declares PARAMS."""
    tables = {}
    for script, target in sorted(console_scripts().items()):
        module = importlib.import_module(target.split(':')[0])
        if hasattr(module, 'PARAMS'):
            tables[script] = module.PARAMS
    return tables


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='donkey-ros params', description=__doc__)
    parser.add_argument('nodes', nargs='*', help='executables to show (default: all)')
    args = parser.parse_args(argv)
    for script, params in node_tables().items():
        if args.nodes and script not in args.nodes:
            continue
        print(f'### `{script}`\n\n{markdown_table(params)}\n')
    return 0
