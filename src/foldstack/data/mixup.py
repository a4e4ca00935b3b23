"""Mixup / CutMix on (N, K) float targets (one-hot, multi-hot, one binary column, soft), on top of timm's Mixup."""
import torch
from timm.data import Mixup

from ..config.training import Mixup as MixupConfig
from ..models.meta_head import split_batch


class TargetMixup(Mixup):
    """timm's Mixup/CutMix for the images; targets mixed as `lam * t + (1 - lam) * t.flip(0)`.

    `lam` is a scalar (mode 'batch') or a per-sample column (modes 'pair'/'elem'); for CutMix it is timm's
    area-corrected value. `x` is mixed in place (as timm does). No label smoothing here: the loss applies it.
    The random draws come from numpy's global RNG (timm's code), which the engine checkpoints and restores, so a
    resumed run mixes the same way; the transforms never touch that global stream (see data/augment.py).
    """

    def __init__(self, cfg: MixupConfig, num_classes: int):
        super().__init__(mixup_alpha=cfg.mixup_alpha, cutmix_alpha=cfg.cutmix_alpha, prob=cfg.prob,
                         switch_prob=cfg.switch_prob, mode=cfg.mode, correct_lam=True, label_smoothing=0.0,
                         num_classes=num_classes)
        self.off_epoch = cfg.off_epoch

    def set_epoch(self, epoch: int) -> None:
        """Call before each epoch (0-based): mixing stops from `off_epoch` on."""
        self.mixup_enabled = self.off_epoch is None or epoch < self.off_epoch

    def __call__(self, x, target: torch.Tensor) -> tuple:
        """x: images, or (images, meta) (model.meta_head): meta is mixed with the images' lam and pairing (for
        CutMix the pasted area's share)."""
        images, meta = split_batch(x)
        if not self.mixup_enabled or len(images) % 2:  # timm pairs sample i with N-1-i: an odd batch stays unmixed
            return x, target
        lam = {"elem": self._mix_elem, "pair": self._mix_pair}.get(self.mode, self._mix_batch)(images)
        if meta is not None:
            lam_meta = lam.to(meta.dtype) if isinstance(lam, torch.Tensor) else lam
            x = images, meta * lam_meta + meta.flip(0) * (1 - lam_meta)
        if isinstance(lam, torch.Tensor):  # (N, 1) column
            lam = lam.to(device=target.device, dtype=target.dtype)
            if target.ndim == 1:
                lam = lam.squeeze(1)
        elif lam == 1.0:
            return x, target
        return x, target * lam + target.flip(0) * (1 - lam)

    def state_dict(self) -> dict:
        return {"mixup_enabled": bool(self.mixup_enabled)}

    def load_state_dict(self, state: dict) -> None:
        self.mixup_enabled = bool(state["mixup_enabled"])


def create_mixup(cfg: MixupConfig, num_classes: int) -> TargetMixup | None:
    """None when both alphas are 0 (mixing off)."""
    if cfg.mixup_alpha <= 0 and cfg.cutmix_alpha <= 0:
        return None
    return TargetMixup(cfg, num_classes)
