"""`make sweep COMP=<name> SWEEP=<name>`: a grid or a search of experiments, each trial an ordinary experiment
(configs/exp/<sweep>-<hash>.yaml, the usual content-hashed artifacts), run on Ray.

    spec.py         configs/sweep/<name>.yaml: its schema and loading
    trials.py       grid expansion, trial names, the trials' experiment files
    results.py      sweeps/<comp>/<sweep>/results.json: what each trial did, and why it stopped
    runner.py       Ray: (trial, fold) tasks, the Tune search (Optuna's sampler, ASHA on fold 0's epochs)
    leaderboard.py  the trials' table (make stack's), the best ones, the `make stack` command for them

Only runner.py imports Ray and Optuna (the `sweep` extra): the rest, and every other module, works without them."""
