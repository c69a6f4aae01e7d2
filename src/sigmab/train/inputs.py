"""What a fine-tuning run reads besides its model: the data and the dense teacher, by default those
the model was built from (as its folder records them)."""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import nn

from sigmab.data import DatasetInfo, DataSplit, get_dataset_info
from sigmab.errors import ConfigError
from sigmab.inputs import check_classes
from sigmab.models import load_model


class FinetuneInputs(NamedTuple):
    info: DatasetInfo
    train_set: DataSplit
    eval_set: DataSplit
    eval_split: str
    teacher: nn.Module | None


def finetune_inputs(cfg: Any, source: dict[str, Any], *, meta: Any, what: str) -> FinetuneInputs:
    """``cfg``: a fine-tuning config (``dataset``, ``data_root``, ``distill_weight``, ``teacher``, ``load_data``);
    ``source``: where the ``what`` folder's model (dense ``meta``) came from (checkpoint, arch, dataset, data_root)."""
    dataset = cfg.dataset or source.get("dataset")
    if dataset is None:
        raise ConfigError(f"no dataset: pass --dataset (the {what} folder does not record one)")
    data_root = cfg.data_root if cfg.data_root is not None else source.get("data_root")
    info = get_dataset_info(dataset)
    train_set, eval_set, eval_split = cfg.load_data(dataset, data_root)
    check_classes(meta, train_set, dataset)
    teacher = None
    if cfg.distill_weight > 0:
        teacher_path = cfg.teacher or source.get("checkpoint")
        if teacher_path is None:
            raise ConfigError("distillation needs a dense teacher checkpoint (--teacher)")
        teacher = load_model(teacher_path, arch=source.get("arch") or meta.arch).eval()
        if teacher.meta.num_classes != meta.num_classes:
            raise ConfigError(f"teacher {teacher_path} has {teacher.meta.num_classes} classes, the {what} model "
                              f"{meta.num_classes}")
    return FinetuneInputs(info, train_set, eval_set, eval_split, teacher)
