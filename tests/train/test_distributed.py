"""Two CPU processes (gloo) train and fine-tune in lockstep, and a resumed run continues from its saved epoch."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sigmab.train import TrainConfig, train
from sigmab.train.distributed import DistInfo
from sigmab.tree import ConvertConfig, load_tree
from sigmab.tree.finetune import FinetuneConfig, finetune
from sigmab.tree.pipeline import convert_checkpoint
from tests.helpers import digits_resnet_checkpoint

pytestmark = pytest.mark.slow  # two gloo processes per run, four runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Killed(Exception):
    """Raised on every rank at the end of the first epoch, once its checkpoint is written: a killed run."""


def _kill_after_first_epoch(module) -> None:  # noqa: ANN001
    real = module.barrier

    def barrier(info: DistInfo) -> None:
        real(info)
        raise _Killed

    module.barrier = barrier


def _worker(rank: int, world: int, port: int, job: str, folder: str, epochs: int, resume: bool, out: str,
            killed: bool) -> None:
    import sigmab.train.driver as driver_module

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=120))
    if killed:
        _kill_after_first_epoch(driver_module)  # the one training driver: its barrier ends every epoch
    try:
        info = DistInfo(rank, world)
        if job == "train":
            cfg = TrainConfig(arch="small_cnn", dataset="digits", epochs=epochs, batch_size=32, lr=0.05)
            model = train(cfg, folder, resume=resume, progress=False, dist_info=info).model
        else:
            cfg = FinetuneConfig(soft_epochs=1, hard_epochs=epochs - 1, batch_size=32, lr=0.02, distill_weight=0.0)
            model = finetune(folder, cfg, resume=resume, progress=False, dist_info=info)[0]
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, Path(out) / f"rank{rank}.pt")
    except _Killed:
        pass
    finally:
        dist.destroy_process_group()


def _run(job: str, folder: Path, epochs: int, resume: bool, out: Path, *, killed: bool = False
         ) -> list[dict[str, torch.Tensor]]:
    out.mkdir(parents=True, exist_ok=True)
    mp.spawn(_worker, args=(2, _free_port(), job, str(folder), epochs, resume, str(out), killed), nprocs=2, join=True)
    return [] if killed else [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=lambda m, key=key: f"{key}: {m}")


def test_ddp_training_ranks_agree_and_resume_matches_an_uninterrupted_run(tmp_path) -> None:
    whole = _run("train", tmp_path / "whole", 2, False, tmp_path / "o1")
    _assert_same(*whole)
    _run("train", tmp_path / "split", 2, False, tmp_path / "o2", killed=True)
    assert len((tmp_path / "split" / "metrics.csv").read_text().strip().splitlines()) == 2  # header + epoch 1
    resumed = _run("train", tmp_path / "split", 2, True, tmp_path / "o3")
    _assert_same(*resumed)
    _assert_same(resumed[0], whole[0])  # the resumed run continued from the saved epoch, batch for batch
    strip_time = lambda path: [r.rsplit(",", 1)[0] for r in path.read_text().strip().splitlines()]  # noqa: E731
    assert strip_time(tmp_path / "split" / "metrics.csv") == strip_time(tmp_path / "whole" / "metrics.csv")


@pytest.fixture(scope="module")
def tree_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp-tree")
    convert_checkpoint(digits_resnet_checkpoint(root / "dense", epochs=2), dataset="digits", out=root / "tree",
                       cfg=ConvertConfig(depth=2, widths=[0.5, 0.5], calib_size=400, min_leaf_samples=16))
    return root / "tree"


def test_ddp_tree_finetuning_ranks_agree_and_resume(tree_folder, tmp_path) -> None:
    _run("finetune", tree_folder, 2, False, tmp_path / "o1", killed=True)  # killed after the soft epoch
    both = _run("finetune", tree_folder, 2, True, tmp_path / "o2")
    _assert_same(*both)
    start, _ = load_tree(tree_folder, weights="tree.safetensors")
    assert any(not torch.equal(v, both[0][k]) for k, v in start.state_dict().items())  # it trained
    rows = (tree_folder / "finetune" / "metrics.csv").read_text().strip().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["soft", "hard"]
    assert (tree_folder / "finetuned.safetensors").is_file()
