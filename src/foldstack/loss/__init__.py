from .distill import DistillLoss, soften
from .factory import create_loss, logits_to_probs
from .weighted import class_weights_from_targets

__all__ = ["create_loss", "logits_to_probs", "class_weights_from_targets", "DistillLoss", "soften"]
