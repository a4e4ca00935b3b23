"""Timing a piece of work: warm-up calls first, the device's queued work included, a median against noise.
Every speed the project reports or plans with is measured here, so they all mean the same thing."""
import statistics
import time


def synced_clock(device=None) -> float:
    """time.perf_counter once the device's queued kernels have run (CUDA launches return before the work ends)."""
    if device is not None and str(device).startswith("cuda"):  # a torch.device or its name
        import torch

        torch.cuda.synchronize(device)
    return time.perf_counter()


def seconds_of(fn, calls: int = 1, device=None) -> float:
    """Wall seconds of `calls` back-to-back calls of fn, synchronised at both ends only (a loader's prefetch and
    the next launch overlap the device's work, as they do in a real run)."""
    t0 = synced_clock(device)
    for _ in range(calls):
        fn()
    return synced_clock(device) - t0


def per_call_seconds(fn, repeats: int = 3, warmup: int = 2, device=None, min_seconds: float = 0.0) -> list[float]:
    """Seconds of each timed call of fn: `warmup` untimed calls first (allocation, kernel choice at a new shape),
    then at least `repeats` timed ones, more until `min_seconds` have passed in timed calls."""
    for _ in range(warmup):
        fn()
    times = []
    while len(times) < max(repeats, 1) or sum(times) < min_seconds:
        times.append(seconds_of(fn, device=device))
    return times


def median_seconds(fn, repeats: int = 3, warmup: int = 2, device=None) -> float:
    """The median seconds of one call of fn (see per_call_seconds): a burst of load on a shared machine moves a
    mean, not a median."""
    return float(statistics.median(per_call_seconds(fn, repeats, warmup, device)))


def interleaved(steps: dict, warmup: int, n: int, rounds: int, device) -> tuple[dict, dict]:
    """Candidates (name -> (step, batch iterator, images per call)) timed in turns: n calls each per round after
    `warmup` untimed ones. Returns ({name: images/s over all rounds}, {name: median over rounds of its speed
    relative to the first candidate's in the same round}): short alternating rounds and a median keep a burst of
    load on a shared machine from deciding the ratio."""
    calls = {name: (lambda step=step, batches=batches: step(next(batches)))
             for name, (step, batches, _) in steps.items()}
    seconds = {name: [] for name in steps}
    for call in calls.values():
        seconds_of(call, warmup)  # untimed: allocation, kernel choice, the loader's workers starting
    for _ in range(rounds):
        for name, call in calls.items():
            seconds[name].append(seconds_of(call, n, device))
    first = next(iter(steps))
    speed = {name: n * rounds * steps[name][2] / sum(seconds[name]) for name in steps}
    ratio = {name: float(statistics.median([(steps[name][2] / s) / (steps[first][2] / s0)
                                            for s, s0 in zip(seconds[name], seconds[first])])) for name in steps}
    return speed, ratio
