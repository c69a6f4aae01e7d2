"""The ``sigmab`` command line: ``demo``, ``train``, ``convert``, ``finetune``, ``fit-routers``, ``prune``, ``nested``,
``dispatch``, ``eval``, ``export``, ``package``, ``edge-sim``, ``models``, ``presets``.

User errors (bad input, missing files, misfit checkpoints) print one ``sigmab: error: ...``
line and exit with status 2, before any work starts where they can be detected up front.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import nullcontext

from sigmab import __version__
from sigmab.cli.baselines import add_dispatch, add_nested
from sigmab.cli.dense import add_demo, add_eval, add_models, add_presets, add_train
from sigmab.cli.deploy import add_edge_sim, add_export, add_package
from sigmab.cli.prune import add_prune
from sigmab.cli.tree import add_convert, add_finetune, add_fit_routers
from sigmab.errors import SigmabError
from sigmab.utils.lock import folder_lock

DESCRIPTION = ("Rebuild a pretrained dense network as a SigmaB-Net (a shared backbone, binary routers and "
               "channel-sliced leaves; each input runs one root-to-leaf path) and measure it beside static "
               "pruning, nested sparse networks and an input dispatcher. `sigmab demo` runs the whole pipeline on "
               "bundled data; `sigmab COMMAND --help` shows each command's options and defaults.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigmab", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"sigmab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (add_demo, add_train, add_convert, add_finetune, add_fit_routers, add_prune, add_nested,
                add_dispatch, add_eval, add_export, add_package, add_edge_sim, add_models, add_presets):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Every command that writes a run folder holds that folder's lock (its flag is named by `writes`).
    written = getattr(args, getattr(args, "writes", ""), None)
    try:
        with folder_lock(written) if written is not None else nullcontext():
            return int(args.func(args))
    except SigmabError as exc:
        print(f"sigmab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sigmab: interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130
