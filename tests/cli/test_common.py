import argparse
from dataclasses import dataclass

from sigmab.cli.common import run_command
from sigmab.config import option


@dataclass
class _Options:
    lr: float = option(0.1, "peak learning rate")


def _parser(**kwargs) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser()
    sub = root.add_subparsers(dest="command")
    run_command(sub, "go", func=lambda args: 0, help="h", description="d", folder="the folder", **kwargs)
    return root


def test_a_run_command_writes_its_out_folder_and_takes_the_asked_flags() -> None:
    args = _parser(config="go options", resume="continue", options={"go": _Options}).parse_args(
        ["go", "--out", "x", "--config", "c.yaml", "--resume", "--lr", "0.5", "--no-progress"])
    assert (args.writes, str(args.out), args.config, args.resume, args.lr, args.no_progress) == (
        "out", "x", "c.yaml", True, 0.5, True)
    assert "lr" not in vars(_parser(options={"go": _Options}).parse_args(["go", "--out", "x"]))  # unset: no layer


def test_an_in_place_command_locks_its_positional_folder_and_has_only_the_flags_asked_for() -> None:
    root = _parser(in_place=True, preset=True)
    args = root.parse_args(["go", "tree", "--preset", "p"])
    assert (args.writes, str(args.run), args.preset) == ("run", "tree", "p")
    assert not hasattr(args, "resume") and not hasattr(args, "config")
    help_text = root._subparsers._group_actions[0].choices["go"].format_help()
    assert "the folder" in help_text and "--resume" not in help_text
