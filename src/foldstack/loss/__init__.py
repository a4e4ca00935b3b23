from .factory import create_loss, logits_to_probs

__all__ = ["create_loss", "logits_to_probs"]
