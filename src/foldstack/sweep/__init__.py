"""`make sweep COMP=<name> SWEEP=<name>`: a grid or a search of experiments, each trial an ordinary experiment
(configs/exp/<sweep>-<hash>.yaml, the usual content-hashed artifacts), run on Ray: runner.py the (trial, fold)
tasks, search.py fold 0 under Ray Tune (Optuna's sampler, ASHA). Only those two import Ray and Optuna (the `sweep`
extra), and only once cluster.connect has set Ray's settings: the rest, and every other module, works without them."""
