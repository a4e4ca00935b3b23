"""The whole config: every section with its defaults."""
from pydantic import Field

from .base import Section
from .competition import Competition, Folds
from .levels import Distill, Predict, Pseudo, Stack, Submit
from .training import Data, Loss, LrFind, Mixup, Model, Train


class Runtime(Section):
    """Settings that never change results: excluded from artifact hashes."""
    num_workers: int = Field(2, ge=0)
    infer_batch: int = Field(1024, ge=1)  # most images (views included) per inference forward call
    device: str = "auto"                # auto: cuda if available, else cpu
    progress: bool = True


class Config(Section):
    competition: Competition = Competition()
    folds: Folds = Folds()
    model: Model = Model()
    data: Data = Data()
    train: Train = Train()
    mixup: Mixup = Mixup()
    loss: Loss = Loss()
    predict: Predict = Predict()
    stack: Stack = Stack()
    submit: Submit = Submit()
    pseudo: Pseudo = Pseudo()
    distill: Distill = Distill()
    lr_find: LrFind = LrFind()
    runtime: Runtime = Runtime()
