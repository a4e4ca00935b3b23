"""Prediction: class probabilities of every image a loader gives, averaged over models, TTA views merged. The
one path for validation during training, OOF and test predictions, and the benchmarks."""
import numpy as np
import torch

from ..config.schema import Config
from ..data.device import to_device
from ..loss.factory import logits_to_probs
from ..tta import build_views, forward_views, merge_views
from ..wide import TopProbs
from .runtime import autocast, num_workers, progress, use_channels_last


def load_fold_models(cfg: Config, n_outputs: int, fold_dir, device) -> list:
    """The models one fold predicts with: several with predict.checkpoint=snapshots or a list (their mean)."""
    from ..checkpoints import weights_for_prediction

    return models_from_weights(cfg, n_outputs, weights_for_prediction(fold_dir, cfg.predict.checkpoint), device)


def models_from_weights(cfg: Config, n_outputs: int, states: list, device) -> list:
    """One model of cfg.model per state dict (a fold's checkpoints, or the weights a bundle carries), on device."""
    from ..models.factory import create_model
    from ..models.meta_head import meta_inputs

    model_cfg = cfg.model.model_copy(update={"pretrained_path": None})  # the checkpoint holds every weight
    models = [create_model(model_cfg, n_outputs, cfg.competition.task, meta_inputs=meta_inputs(s)) for s in states]
    for model, weights in zip(models, states):
        model.load_state_dict(weights)
    return [model.to(device) for model in models]


def inference_loader(cfg: Config, images, rows, device):
    """Rows of an ImageStore (S x S squares: config.training.cache_side) in order through the evaluation transform,
    as img_size batches (TTA views are made on the device)."""
    from ..config.training import cache_side
    from ..data.dataset import ImageDataset, make_loader
    from ..data.transforms import build_transforms
    from ..errors import PipelineError

    if getattr(images, "size", None) not in (None, cache_side(cfg.data)):
        raise PipelineError(f"internal: an image store of {images.size}px squares for a config whose cache side is "
                            f"{cache_side(cfg.data)}px (data.cache_size={cfg.data.cache_size}, "
                            f"data.crop_pct={cfg.data.crop_pct})")
    dataset = ImageDataset(images, rows, None, build_transforms(cfg.data, False, images.float_pixels))
    return make_loader(dataset, cfg.data.batch_size * 2, num_workers(cfg, device))


def predict_files(models: list, cfg: Config, files: list, device, desc: str = "predict", top: int = 0):
    """Probabilities (N, K) of image files outside the decoded-image cache, exactly as `make oof` predicts test
    rows (decoded to the cache's side by data.cache.file_store, the configured TTA, the models averaged). top:
    as predict_probs (predict.keep_top)."""
    from ..data.cache import file_store

    store = file_store(files, 0, cfg)  # image files, or a competition's samples (data/sources.py)
    loader = inference_loader(cfg, store, np.arange(len(store)), device)
    return predict_probs(models, loader, cfg, device, tta_views(cfg), desc=desc, top=top)


def tta_views(cfg: Config) -> list:
    """The predict section's TTA views (identity first) at the validation image size."""
    p = cfg.predict
    return build_views(p.tta, p.tta_scales, p.tta_crop_fraction, cfg.data.img_size)


@torch.inference_mode()
def predict_probs(models: list, loader, cfg: Config, device, views=None, desc: str = "predict", plain: bool = False,
                  weights: list | None = None, top: int = 0):
    """Class probabilities (N, K) averaged over models (by `weights` when given), each model's views (`tta_views`;
    default the identity) merged by predict.tta_merge. All models share one pass over the loader (test images are
    decoded once). plain=True also returns the identity view's probabilities from the same pass. top > 0
    (predict.keep_top): each batch's rows cut to their `top` best classes after merging, as wide.TopProbs."""
    views = views or build_views([], [], 1.0, cfg.data.img_size)
    layout = use_channels_last(cfg, torch.device(device))
    for model in models:
        model.eval()
        if layout:  # weights in the layout of the batches (a no-op for a model trained here)
            model.to(memory_format=torch.channels_last)
    task, merged_out, plain_out = cfg.competition.task, [], []
    shares = [1.0] * len(models) if weights is None else list(weights)  # x 1.0 and / n: the plain mean's bytes
    for x, _ in progress(loader, cfg, desc):
        x = to_device(x, device, cfg.data, layout)
        merged = identity = 0
        for model, weight in zip(models, shares):
            with autocast(cfg, device):
                probs = forward_views(lambda batch: logits_to_probs(model(batch), task), x, views,
                                      cfg.runtime.infer_batch)
            merged = merged + weight * (probs[0].float() if len(views) == 1 else
                                        merge_views(probs.float(), cfg.predict.tta_merge, task))
            identity = identity + weight * probs[0].float()
        kept = (lambda t: TopProbs.from_dense(t.numpy(), top)) if top else (lambda t: t)
        merged_out.append(kept(merged.cpu() / sum(shares)))
        if plain:  # a second (rows x classes) matrix only when asked for: 52 GB at herbarium's size dense
            plain_out.append(kept(identity.cpu() / sum(shares)))
    if top:
        return (TopProbs.concat(merged_out), TopProbs.concat(plain_out)) if plain else TopProbs.concat(merged_out)
    merged = torch.cat(merged_out).numpy().astype(np.float64)
    return (merged, torch.cat(plain_out).numpy().astype(np.float64)) if plain else merged
