from .factory import create_model, load_weights

__all__ = ["create_model", "load_weights"]
