"""`make sweep COMP=<name> SWEEP=<name>`: a grid or a search of experiments, each trial an ordinary experiment
(configs/exp/<sweep>-<hash>.yaml, the usual content-hashed artifacts), run on Ray.

    spec.py         configs/sweep/<name>.yaml: its schema and loading
    trials.py       grid expansion, trial names, the trials' experiment files
    results.py      sweeps/<comp>/<sweep>/results.json: what each trial did, and why it stopped
    cluster.py      the Ray connection (local or SWEEP_ADDRESS), Ray's settings, what one task asks for
    worker.py       a task's setup and Context, through the stage calls the make target hands over
    runner.py       Ray: the (trial, fold) tasks, as many at a time as the cluster runs
    search.py       Ray Tune: fold 0 of every trial, Optuna's sampler, ASHA on fold 0's epochs
    rungs.py        ASHA's rungs kept from the results, so a stopped trial says the cutoff it fell behind
    leaderboard.py  the trials' table (make stack's), the best ones, the `make stack` command for them

Only runner.py and search.py import Ray and Optuna (the `sweep` extra), and only once cluster.connect has set Ray's
settings: the rest, and every other module, works without them."""
