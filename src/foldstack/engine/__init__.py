"""The loops that run a model, one concept a module (import from the defining module):

- runtime:   where and how it runs (device, loader workers, memory layout, autocast, progress bars)
- inference: class probabilities of a loader's images, TTA views merged (validation, OOF and test predictions)
- fold:      everything one fold trains with, built from the config (model, optimizer, loaders, averaging...)
- step:      one batch through training (device, multiscale, mixup, forward/backward, optimizer update)
- training:  one fold's epochs: train, validate, checkpoint, resume, SWA
- export:    one fold as an ONNX graph (uint8 in, probabilities out), checked against PyTorch and timed
- profile:   a configured model's parameters, FLOPs and images/s, without training it"""
