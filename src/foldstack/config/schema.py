"""The whole config: every section with its defaults."""
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from .base import Section
from .competition import Competition, Folds
from .levels import Distill, Predict, Pseudo, Stack, Submit
from .training import Data, Loss, LrFind, Mixup, Model, Train


class Runtime(Section):
    """Settings that never change results (channels_last and compile: float rounding only): excluded from hashes."""
    num_workers: Union[Annotated[int, Field(ge=0)], Literal["auto"]] = "auto"
    """DataLoader worker processes; `auto`: on a GPU machine the cores less one, shared among its DDP ranks (at
    most 16), on a CPU device none."""
    cache: bool = True
    """Decode and resize every image once into a memory-mapped cache; false: decode the files every epoch."""
    channels_last: Union[bool, Literal["auto"]] = "auto"
    """NHWC layout of model and batches; `auto`: on GPUs. On CPU, true speeds inference up (+25% measured) but not
    the training pipeline: set it for `make oof` there."""
    compile: bool = False
    """torch.compile the training forward (minutes of start-up; pays on long runs)."""
    infer_batch: int = Field(1024, ge=1)
    """Most images (TTA views included) per inference forward call."""
    device: str = "auto"
    """Torch device; `auto`: cuda if available, else cpu."""
    progress: bool = True
    """Progress bars (and the loss readout at their interval)."""
    trackers: list[Literal["tensorboard", "mlflow", "wandb"]] = ["tensorboard"]
    """Where training, `make oof`, `make stack` and `make pseudo` also log (docs/tracking.md): `tensorboard` (event
    files under runs/<comp>/<exp>/<key>/fold<k>/, `make tensorboard`), `mlflow` (runtime.mlflow_uri, `make
    mlflow-ui`), `wandb` (project <comp>, offline unless an API key is set: `wandb sync` later); [] for none. The
    mlflow and wandb extras are installed on first use. Tracking never changes an artifact or its key."""
    mlflow_uri: str = ""
    """MLflow tracking URI: a server (http://host:5000), a database (sqlite:///path.db); empty: the project's local
    store, sqlite:///mlruns/mlflow.db (artifacts in mlruns/artifacts/)."""
    tracker_timeout: float = Field(30.0, gt=0)
    """Seconds one tracker call may take: a tracker that takes longer, or fails, is reported once and switched off
    for the rest of the run (training goes on)."""


class Config(Section):
    """Every section; layers, later wins: these defaults < configs/<comp>.yaml < configs/exp/<exp>.yaml < overrides."""
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

    @model_validator(mode="after")
    def _channels_agree(self):
        # One count of input channels everywhere: the network's first convolution and the normalisation.
        counts = (self.model.in_chans, len(self.data.mean), len(self.data.std))
        if len(set(counts)) > 1:
            raise ValueError(f"model.in_chans is {counts[0]} but data.mean has {counts[1]} values and data.std "
                             f"{counts[2]}: give one per input channel")
        return self
