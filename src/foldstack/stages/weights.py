"""`make weights [MODEL=<timm name>]`: ImageNet weights into weights/, in the hub cache layout the training stages
read (models.hub), so the folder can be uploaded as a Kaggle dataset and used offline. Without MODEL: the models of
every configured experiment (with the overrides) that may load hub weights. Needs no competition data."""
import logging
from pathlib import Path

from ..artifacts import stage_root
from ..config.loading import resolve
from ..config.files import experiment_names
from ..context import config_layers
from ..errors import PipelineError

log = logging.getLogger("foldstack")


def configured_models(root: Path, comp: str, overrides: list[str]) -> list[str]:
    """The distinct model names of the experiments that may load hub weights, in experiment order."""
    names = ["baseline"] + [n for n in experiment_names(root) if n != "baseline"]
    models = []
    for exp in names:
        model = resolve(config_layers(root, comp, exp, overrides, infer=False)).model
        if model.pretrained is not False and not model.pretrained_path and model.name not in models:
            models.append(model.name)
    return models


def fetch(root: Path, names: list[str]) -> list[str]:
    """Each model's weights into root/weights/ (already there: nothing downloaded); one line per model:
    repo, file, size, sha256. PipelineError (one line) naming the models that could not be had."""
    from ..models.hub import lookup, weights_dir

    folder = weights_dir(root)
    lines, missing = [], []
    for name in names:
        found = lookup(name, root, download=True)
        w = found.weights
        if w is None and not found.hub:  # an unknown model, or one timm has no hub weights for
            raise PipelineError(found.reason)
        if w is None:
            missing.append(f"{name} ({found.reason})")
            continue
        where = f"downloaded into {folder}/" if found.downloaded else f"already in {folder}/"
        size = Path(w.path).stat().st_size
        lines.append(f"{name}: {w.repo_id} {w.filename} {size / 1e6:.1f} MB sha256 {w.sha256} ({where})")
        print(lines[-1], flush=True)
    if missing:
        raise PipelineError(f"no weights for {'; '.join(missing)}: run `make weights` with the network on (hub "
                            f"reachable, HF_HUB_OFFLINE unset), or copy in a weights/ folder that has them")
    return lines


def run(root: Path, comp: str, overrides: list[str], model: str | None) -> list[str]:
    names = [model] if model else configured_models(root, comp, overrides)
    if not names:
        raise PipelineError(f"no experiment of {comp} loads pretrained weights (every one sets model.pretrained=false "
                            f"or a pretrained_path): name one with MODEL=<timm name>")
    log.info(f"weights for {', '.join(names)} -> {stage_root(root, 'weights')}/")
    return fetch(root, names)
