from .factory import create_model
from .heads import LinearHead, MarginHead
from .net import Net, set_backbone_trainable
from .pooling import GeM

__all__ = ["create_model", "set_backbone_trainable", "Net", "GeM", "LinearHead", "MarginHead"]
