"""`donkey-ros params`: every node's parameters as Markdown, from the nodes' own PARAMS tables.

`donkey-ros params > docs/parameters.md` regenerates the documentation; a test keeps it current.
"""
from __future__ import annotations

import argparse
from donkey_ros.common.params import markdown_table
from donkey_ros.resources import node_modules

HEADER = ('# Parameters\n\nEvery node\'s parameters, generated from the nodes\' `PARAMS` tables by '
          '`donkey-ros params > docs/parameters.md`.\nSet them in a parameter file (`config/*.yaml`), '
          'in a launch file, or with `--ros-args -p name:=value`.\n')


def render(nodes: list[str] | None = None) -> str:
    sections = [HEADER] if not nodes else []
    for script, module in node_modules().items():
        if not nodes or script in nodes:
            sections.append(f'## `{script}`\n\n{markdown_table(module.PARAMS)}\n')
    return '\n'.join(sections)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='donkey-ros params', description=__doc__)
    parser.add_argument('nodes', nargs='*', help='executables to show (default: all)')
    args = parser.parse_args(argv)
    print(render(args.nodes), end='')
    return 0
