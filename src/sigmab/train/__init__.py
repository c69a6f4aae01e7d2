"""Training loops."""

from sigmab.train import trainer
from sigmab.train.train_config import TrainConfig
from sigmab.train.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train", "trainer"]
