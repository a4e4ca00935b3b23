"""ASHA's rungs, kept by the driver from the fold-0 results it sees, so that a trial ASHA stops is recorded with
the rung it fell behind at and that rung's cutoff. Ray Tune's ASHAScheduler makes the decision; this book follows
its documented rules with one bracket and stop_last_trials=False: rungs at grace_period x reduction_factor^k
epochs up to max_t; a result is entered at the highest rung its epoch has reached that the trial is not in yet,
judged against the 1 - 1/reduction_factor quantile of the values the rung held before it. No Ray here."""
import numpy as np


class Rungs:
    def __init__(self, metric: str, mode: str, grace_period: int, max_t: int, reduction_factor: float):
        self.metric, self.mode, self.reduction_factor = metric, mode, reduction_factor
        self.sign = 1.0 if mode == "max" else -1.0  # values are kept as rewards: higher is better
        count = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)  # as Ray counts them
        self.entered = {grace_period * reduction_factor ** k: {} for k in reversed(range(count))}  # highest first

    def cutoff(self, rung: float) -> float | None:
        """The rung's cutoff in the metric's own units (None while the rung is empty)."""
        rewards = list(self.entered[rung].values())
        return float(np.nanpercentile(rewards, (1 - 1 / self.reduction_factor) * 100) * self.sign) if rewards else None

    def enter(self, trial_id: str, result: dict) -> tuple[float | None, float | None]:
        """Enter one result ({"epoch", metric}); returns (the rung it was judged at, the rung's cutoff before it),
        or (None, None) where it reached no new rung."""
        if "epoch" not in result or result.get(self.metric) is None:
            return None, None
        rung = next((r for r in self.entered if result["epoch"] >= r), None)  # the highest reached
        if rung is None or trial_id in self.entered[rung]:
            return None, None
        cutoff = self.cutoff(rung)
        self.entered[rung][trial_id] = self.sign * float(result[self.metric])
        return rung, cutoff

    def behind(self, value: float, cutoff: float | None) -> bool:
        return cutoff is not None and self.sign * value < self.sign * cutoff

    def stop_reason(self, result: dict, rung: float | None, cutoff: float | None) -> dict:
        """What a stopped trial's record says: its epoch and metric, the rung and its cutoff where they explain it."""
        value, epoch = float(result[self.metric]), int(result["epoch"])
        if rung is not None and self.behind(value, cutoff):
            why = (f"stopped by ASHA at epoch {epoch}: {self.metric} {value:.5g} "
                   f"{'below' if self.mode == 'max' else 'above'} the epoch-{rung:g} rung's cutoff {cutoff:.5g}")
        else:
            rung = cutoff = None
            why = f"stopped by ASHA at epoch {epoch} with {self.metric} {value:.5g}"
        return dict(epoch=epoch, metric=value, rung=rung, cutoff=cutoff, why=why)
