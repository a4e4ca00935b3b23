"""A tracker that cannot stop the pipeline: each backend's calls run on its own daemon thread, in order, and a call
that raises or outlasts runtime.tracker_timeout switches that backend off for the rest of the run, with one
warning. A hung call is left behind on its thread (a daemon: it does not keep the process alive)."""
import logging
import queue
import threading

log = logging.getLogger("foldstack")


class Guarded:
    """call(method, *args) runs backend.method(*args) on the backend's thread and returns its result, or None once
    the backend is off."""

    def __init__(self, name: str, backend, timeout: float):
        self.name, self.backend, self.timeout = name, backend, timeout
        self.on = True
        self.jobs: queue.Queue = queue.Queue()
        threading.Thread(target=self._work, name=f"tracker-{name}", daemon=True).start()

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:  # None: the run is over, the thread ends
            fn, args, box, done = job
            try:
                box["result"] = fn(*args)
            except BaseException as e:  # noqa: BLE001 (a tracker's failure of any kind is reported, never raised)
                box["error"] = e
            done.set()

    def call(self, method: str, *args):
        if not self.on:
            return None
        box, done = {}, threading.Event()
        self.jobs.put((getattr(self.backend, method), args, box, done))
        if not done.wait(self.timeout):
            return self.switch_off(f"{method} took longer than runtime.tracker_timeout={self.timeout:g}s")
        if "error" in box:
            e = box["error"]
            return self.switch_off(f"{method} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return box.get("result")

    def stop(self) -> None:
        """After the run's last call: its thread ends (a hung one ends whenever its call returns)."""
        self.jobs.put(None)

    def switch_off(self, why: str) -> None:
        self.on = False
        log.warning(f"tracker {self.name}: {why}: switched off for this run (training and its artifacts go on)")
        return None
