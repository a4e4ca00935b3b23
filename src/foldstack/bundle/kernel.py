"""What a bundle's kernel runs once foldstack is installed, with the library's own code at every step: each
experiment's test predictions (engine.inference.predict_files, float32 as make oof stores them), the stack's
fitted level 2 on them, then submission.csv built with the stack's thresholds and validated. So on the CPU the
file is byte for byte make submit's (tests/test_bundle.py runs it in a fresh offline venv)."""
import logging
import time
from pathlib import Path

import numpy as np

from ..data.table import load_test, output_names
from ..errors import PipelineError
from ..submission import build_submission, validate_submission
from ..utils.io import atomic_write_csv
from .layout import CONFIG_FILE, read_config, read_spec

log = logging.getLogger("foldstack")


def test_predictions(dataset: Path, experiment, overrides: dict, paths: list, n_outputs: int, device) -> np.ndarray:
    """One experiment's test probabilities (float32, as its test.npy) from the bundled fold weights."""
    from ..checkpoints import load_checkpoint
    from ..engine.inference import models_from_weights, predict_files

    cfg = read_config(dataset / experiment.config, **overrides)
    models = [m for fold in experiment.folds
              for m in models_from_weights(cfg, n_outputs, load_checkpoint(dataset / fold)["weights"], device)]
    t0 = time.time()
    probs = predict_files(models, cfg, paths, device, desc=f"{experiment.name}: {len(paths)} test images")
    log.info(f"{experiment.name}: {len(paths)} test images, {len(models)} model(s), "
             f"{len(paths) / (time.time() - t0):.0f} images/s on {device}")
    return probs.astype(np.float32)


def predict_bundle(dataset: Path, input_dir: Path, output: Path, device: str = "auto") -> Path:
    """submission.csv in `output` for the competition folder `input_dir` (sample submission + test images) from
    the bundle's dataset folder; returns its path."""
    from ..engine.runtime import resolve_device

    dataset, input_dir = Path(dataset), Path(input_dir).resolve()
    spec = read_spec(dataset)
    overrides = {"competition": {"input_dir": str(input_dir)}, "runtime": {"device": device}}
    cfg = read_config(dataset / CONFIG_FILE, **overrides)
    comp = cfg.competition
    if len(output_names(comp)) != spec.n_outputs:
        raise PipelineError(f"{dataset / CONFIG_FILE}: {len(output_names(comp))} outputs, the bundle has "
                            f"{spec.n_outputs}")
    test = load_test(comp, input_dir, spec.comp)
    torch_device = resolve_device(device)
    log.info(f"bundle {spec.key}: {spec.source} of {len(spec.experiments)} experiment(s), {len(test.ids)} test "
             f"images in {input_dir}, on {torch_device}")
    tests = [test_predictions(dataset, e, overrides, test.samples, spec.n_outputs, torch_device)
             for e in spec.experiments]
    if spec.level2 is None:
        probs = tests[0]
    else:
        from ..data.meta_features import image_meta_features
        from ..stacking.persist import load_level

        meta = image_meta_features(test.samples, spec.meta_features) if spec.meta_features else None
        probs = load_level(dataset / spec.level2).predict(tests, meta).astype(np.float32)
    thresholds = None if spec.thresholds is None else np.asarray(spec.thresholds)
    sub = build_submission(comp, test.ids, probs, thresholds)
    path = Path(output) / "submission.csv"
    validate_submission(sub, test.frame, comp, source=str(path))
    atomic_write_csv(path, sub)
    log.info(f"wrote validated submission ({len(sub)} rows) -> {path}")
    return path
