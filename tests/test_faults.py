"""Faults: `kill -9` of the whole `make all` process group at seeded moments, a full disk, an unwritable folder.

The promise under test: every folder at the artifact level exists only complete (with its manifest.json; names
starting with a dot are the staging area), `submission.csv` and `configs/<comp>.yaml` are absent or complete, a
rerun of the same command finishes, and ends with the byte-identical `submission.csv` of an uninterrupted run.

Kill moments: kill i targets a stage through a window of time (KILLS[i]). The window opens when a path first
appears (`folds/c`, fold 0's work folder `.fold0.partial`, `oof/c`, `stacks/c`, `submissions/c`) or fold 0 logs
an epoch, and closes at the next such event or when make launches the next script. One uninterrupted reference
run measures every window; kill run i waits for its window to open, sleeps a seeded fraction of the reference
window (random.Random(1000 + i), stratified when several kills share a window), then SIGKILLs the process group:
make, the stage script, any DataLoader worker. Staging folders appear when a stage starts writing and a fold
trains within its window, so kills land in the write windows. Kills aimed at predict/stack/submit start from a
copy of the reference with that stage's outputs (and later ones) removed: make finds the earlier stages up to
date, as a rerun would, and the file stays within a few minutes."""
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import PY, REPO, TINY, make_competition, make_project

COMP = "c"
SETTINGS = [o for o in TINY if not o.startswith("train.epochs")] + ["train.epochs=2"]
OVERRIDES = " ".join(SETTINGS)
SCRIPTS = {"folds": "01_folds.py", "train": "02_train.py", "predict": "03_predict.py", "stack": "05_stack.py",
           "submit": "06_submit.py", "score": "score.py"}
ORDER = list(SCRIPTS)
OUT_DIRS = {"folds": "folds", "train": "models", "predict": "oof", "stack": "stacks", "submit": "submissions"}
# Artifact folders: <dir>/<comp>/<key> or <dir>/<comp>/<exp>/<key> (models: a container of fold<k> artifacts).
LEVELS = {"folds": 1, "cache": 1, "oof": 2, "stacks": 1, "submissions": 1, "models": 2}
FOLD = f"models/{COMP}/baseline/*/"
# (stage, event opening the window, event closing it); an event is a path pattern appearing, "epochs:<n>" (fold 0's
# work folder has logged n epochs) or "@<stage>" (make launched its script; closing only).
KILLS = [("folds", f"folds/{COMP}", "@train"),
         ("train", FOLD + ".fold0.partial", "epochs:1"),  # building the model, epoch 1: nothing to resume yet
         ("train", "epochs:1", "epochs:2"),  # epoch 2: the rerun resumes from epoch 1's last.pt
         ("predict", f"oof/{COMP}", "@stack"),
         ("stack", f"stacks/{COMP}", "@submit"),
         ("submit", f"submissions/{COMP}", "@score")]
STAGING = re.compile(r"^\.[^/]+\.tmp-\d+$")  # artifacts.staging's temporary folder
WORK = re.compile(r"^\.fold\d+\.partial$")  # a training fold's work folder


def make_cmd(root: Path, *targets) -> list[str]:
    return ["make", "--no-print-directory", "-C", str(root), *(targets or ["all"]), "INSTALL=", f"COMP={COMP}",
            f"OVERRIDES={OVERRIDES}"]


def group_alive(pgid: int) -> bool:
    """Any process of the group still running (zombies waiting for a reaper do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            return True
    return False


class MakeRun:
    """`make all` in its own process group, its output lines timestamped (make echoes each script it starts)."""

    def __init__(self, root: Path):
        self.root, self.t0, self.lines = root, time.monotonic(), []
        self.proc = subprocess.Popen(make_cmd(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic() - self.t0, line))

    def now(self) -> float:
        return time.monotonic() - self.t0

    def launched(self) -> dict:
        """{stage: seconds after the start when make launched its script}."""
        out = {}
        for t, line in list(self.lines):
            for stage, script in SCRIPTS.items():
                if f"scripts/{script}" in line and "bin/python" in line:
                    out.setdefault(stage, t)
        return out

    def running(self) -> str | None:
        launched = self.launched()
        return max(launched, key=launched.get) if launched else None

    def kill(self) -> bool:
        """SIGKILL to the whole group; False if the run had already finished."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        rc = self.proc.wait()
        deadline = time.time() + 10
        while group_alive(self.proc.pid) and time.time() < deadline:
            time.sleep(0.01)
        assert not group_alive(self.proc.pid), "the process group survived SIGKILL"
        self.reader.join(5)
        return rc == -signal.SIGKILL

    def output(self) -> str:
        return "".join(line for _, line in self.lines)


def first_seen(root: Path, event: str) -> bool:
    if event.startswith("epochs:"):
        logs = list(root.glob(FOLD + ".fold0.partial/log.csv"))
        try:
            return bool(logs) and len(logs[0].read_text().splitlines()) - 1 >= int(event.split(":")[1])
        except OSError:
            return False
    return any(root.glob(event))


def appear_times(run: MakeRun, patterns, poll=0.002) -> dict:
    """{pattern: seconds after the start when it first matched}, polled while the run lasts."""
    seen = {}
    while run.proc.poll() is None:
        for pattern in patterns:
            if pattern not in seen and first_seen(run.root, pattern):
                seen[pattern] = run.now()
        time.sleep(poll)
    return seen


def artifact_folders(root: Path, top: str):
    """Every folder at the artifact level of one stage dir (hidden ones included)."""
    base = root / top / COMP
    if not base.is_dir():
        return []
    level = [base]
    for _ in range(LEVELS[top]):
        level = [p for d in level if not d.name.startswith(".") for p in sorted(d.iterdir())]
    return level


def partial_artifacts(root: Path, ref: dict) -> list[str]:
    """What would break "no partial artifact is ever visible" right now (empty list: nothing)."""
    bad = []
    for top in LEVELS:
        for folder in artifact_folders(root, top):
            rel = folder.relative_to(root)
            if folder.name.startswith("."):
                if not (folder.is_dir() and STAGING.match(folder.name)):
                    bad.append(f"{rel}: unknown hidden entry")
                continue
            if top != "models":
                if not (folder / "manifest.json").is_file():
                    bad.append(f"{rel}: no manifest")
                bad += [f"{p.relative_to(root)}: a temporary file in a complete artifact"
                        for p in folder.rglob(".*")]
                continue
            # models/<comp>/<exp>/<key>: a container of complete fold<k> folders and hidden work folders, never empty
            entries = sorted(folder.iterdir())
            if not entries:
                bad.append(f"{rel}: empty model container")
            for e in entries:
                if WORK.match(e.name) or (e.name.startswith(".") and STAGING.match(e.name)):
                    continue
                if not (re.fullmatch(r"fold\d+", e.name) and (e / "manifest.json").is_file()):
                    bad.append(f"{e.relative_to(root)}: visible without a manifest")
                else:
                    bad += [f"{p.relative_to(root)}: a temporary file in a complete fold" for p in e.rglob(".*")]
    for name in ("submission.csv", f"configs/{COMP}.yaml"):
        if (root / name).exists() and comparable(root / name) != ref[name]:
            bad.append(f"{name}: present but not the complete file")
    return bad


def comparable(path: Path) -> bytes:
    """A file's bytes, less what may differ between two complete runs: the inferred config's header names the
    minute it was written; a checkpoint holds the epoch log with its timings (its tensors are compared)."""
    if path.suffix == ".pt":
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        tensors = {f"{part}.{k}": v for part in ("model", "ema") if isinstance(state.get(part), dict)
                   for k, v in state[part].items()}
        return b"".join(k.encode() + v.numpy().tobytes() for k, v in sorted(tensors.items()))
    data = path.read_bytes()
    if path.suffix == ".yaml":
        data = re.sub(rb" on \d{4}-\d\d-\d\d \d\d:\d\d UTC", b"", data)
    return data


def litter(root: Path) -> list[str]:
    """Hidden entries (staging folders, work folders, temporary files) anywhere in the artifact tree or beside
    submission.csv / the config: none may survive a finished rerun."""
    found = []
    for top in LEVELS:
        if (root / top).exists():
            found += [str(p.relative_to(root)) for p in (root / top).rglob(".*")]
    for d in (root, root / "configs"):
        found += [str(p.relative_to(root)) for p in d.glob(".*.tmp-*")]
    return found


def inventory(root: Path) -> str:
    """What is on disk, stage by stage: + complete, ~ staging or work folder (hidden) [its files], - nothing."""
    def files(folder):
        names = sorted(p.name for p in folder.iterdir())
        return ("[" + " ".join(n if ".tmp-" not in n else "<writing " + n.split(".")[1] + ">" for n in names)
                + "]")

    parts = []
    for top in ("folds", "cache", "models", "oof", "stacks", "submissions"):
        folders = artifact_folders(root, top)
        if top == "models":
            desc = []
            for f in folders:
                for e in sorted(f.iterdir()) if not f.name.startswith(".") else []:
                    if e.name.startswith(".fold"):
                        log = e / "log.csv"
                        epochs = max(len(log.read_text().splitlines()) - 1, 0) if log.is_file() else 0
                        desc.append(f"~{e.name[1:6]}({epochs} epochs logged){files(e)}")
                    elif (e / "manifest.json").is_file():
                        desc.append(f"+{e.name}")
                desc += ["~container" for f in folders if f.name.startswith(".")]
            parts.append(f"models[{' '.join(desc) or '-'}]")
            continue
        done = [f for f in folders if not f.name.startswith(".")]
        staged = [f for f in folders if f.name.startswith(".")]
        parts.append(top + ("+" if done else "") + "".join("~" + files(f) for f in staged)
                     + ("" if done or staged else "-"))
    parts.append("submission.csv" + ("+" if (root / "submission.csv").exists() else "-"))
    return " ".join(parts)


def comparable_files(root: Path) -> dict:
    """Relative path -> content of the artifact files that must not depend on being killed and resumed (arrays,
    checkpoint weights, folds, predictions, submission; not manifests, logs and reports with timings, plots)."""
    out = {}
    for top in LEVELS:
        for p in (root / top).rglob("*"):
            if p.is_file() and p.suffix in (".npy", ".pt", ".csv") and p.name not in ("log.csv", "report.csv"):
                out[str(p.relative_to(root))] = comparable(p)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted `make all`: its outputs, and when each stage's folder appeared / the next one started."""
    root = make_project(tmp_path_factory.mktemp("faults") / "ref")
    make_competition(root, COMP, "label", n_train=24)
    t = time.time()
    run = MakeRun(root)
    patterns = {p for _, anchor, end in KILLS for p in (anchor, end) if not p.startswith("@")}
    appeared = appear_times(run, patterns)
    run.reader.join(10)
    assert run.proc.returncode == 0, run.output()[-4000:]
    launched = run.launched()
    assert set(launched) == set(SCRIPTS) and set(appeared) == patterns, run.output()[-4000:]
    windows = [max((launched[end[1:]] if end.startswith("@") else appeared[end]) - appeared[anchor], 0.02)
               for _, anchor, end in KILLS]
    return {"root": root, "seconds": time.time() - t, "windows": windows, "launched": launched,
            "submission.csv": comparable(root / "submission.csv"),
            f"configs/{COMP}.yaml": comparable(root / "configs" / f"{COMP}.yaml"), "files": comparable_files(root),
            "folders": sorted(str(p.relative_to(root)) for top in LEVELS for p in artifact_folders(root, top))}


@pytest.mark.parametrize("seed", range(len(KILLS)))
def test_kill_9_anywhere_leaves_no_partial_artifact_and_the_rerun_matches(reference, tmp_path, seed):
    stage, anchor, _ = KILLS[seed]
    window = reference["windows"][seed]
    peers = [i for i, kill in enumerate(KILLS) if kill == KILLS[seed]]  # stratified: kill j of m in [j/m, (j+1)/m)
    delay = (peers.index(seed) + random.Random(1000 + seed).random()) / len(peers) * window
    if stage in ("folds", "train"):  # from nothing
        root = make_project(tmp_path / "project")
        make_competition(root, COMP, "label", n_train=24)
    else:  # what the reference built before the stage is there already (make finds it up to date): saves minutes
        later = [OUT_DIRS[s] for s in ORDER[ORDER.index(stage):] if s in OUT_DIRS]
        root = copy_project(reference, tmp_path / "project", drop=[*later, "submission.csv"])

    run = MakeRun(root)
    while run.proc.poll() is None and not first_seen(root, anchor):
        time.sleep(0.002)
    appeared = run.now()
    time.sleep(delay)
    killed_at = run.now()
    running = run.running()
    killed = run.kill()
    on_disk = inventory(root)
    bad = partial_artifacts(root, reference)

    t = time.time()
    rerun = subprocess.run(make_cmd(root), capture_output=True, text=True, timeout=600)
    rerun_s = time.time() - t
    same = (root / "submission.csv").is_file() and comparable(root / "submission.csv") == reference["submission.csv"]
    row = (f"seed {seed}: target {stage} (+{delay:.3f}s of {window:.3f}s after {anchor} appeared at "
           f"{appeared:.1f}s) killed at {killed_at:.1f}s while {running} ran{'' if killed else ' (run had ended)'}; "
           f"on disk: {on_disk}; rerun rc {rerun.returncode} in {rerun_s:.1f}s; submission identical: {same}")
    print(row)
    with open(os.environ.get("FAULTS_TABLE", os.devnull), "a") as f:
        f.write(row + "\n")

    assert not bad, f"partial artifacts visible at the kill ({row}): {bad}"
    assert rerun.returncode == 0, f"{row}\n{rerun.stdout[-3000:]}\n{rerun.stderr[-3000:]}"
    assert same, row
    assert not litter(root), f"staging litter after the rerun: {litter(root)}"
    folders = sorted(str(p.relative_to(root)) for top in LEVELS for p in artifact_folders(root, top))
    assert folders == reference["folders"]  # the same versions: a kill never makes a new key
    files = comparable_files(root)
    assert files.keys() == reference["files"].keys()
    differ = [p for p in files if files[p] != reference["files"][p]]
    assert not differ, f"differ from the uninterrupted run: {differ}"


# ---- a full disk, an unwritable folder ------------------------------------------------------------------------

def copy_project(reference, dst: Path, drop=()) -> Path:
    """The reference project with some stages' outputs removed (so those stages have work to do)."""
    shutil.copytree(reference["root"], dst, symlinks=True)
    for name in drop:
        path = dst / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return dst


def script(root: Path, stage: str, preexec=None) -> subprocess.CompletedProcess:
    cmd = [PY, str(REPO / "scripts" / SCRIPTS[stage]), "--root", str(root), "--comp", COMP, "--set", OVERRIDES]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, preexec_fn=preexec)


def file_size_limit(nbytes: int):
    """preexec_fn: writes past nbytes fail with EFBIG (SIGXFSZ ignored) instead of killing the process."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return apply


def one_error_line(proc, *fragments) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for fragment in fragments:
        assert re.search(fragment, lines[0]), lines[0]
    return lines[0]


def mount(*args) -> None:
    try:
        proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here ({' '.join(args)}): {proc.stderr.strip()}")


def umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


def test_full_disk_while_training_is_one_line_and_the_rerun_succeeds(reference, tmp_path):
    """A file-size limit (EFBIG, as a full disk is met by the writer of one big file): best.pt (1.5 MB) fits,
    last.pt (4.5 MB) does not. One line naming last.pt, no fold folder left (nothing to resume from), nothing
    written at all under models/; without the limit the rerun trains both folds to the reference's weights."""
    root = copy_project(reference, tmp_path / "p", drop=["models", "oof", "stacks", "submissions", "submission.csv"])
    proc = script(root, "train", preexec=file_size_limit(2 * 2**20))
    one_error_line(proc, r"cannot write \S+/models/c/baseline/\w+/\.fold0\.partial/last\.pt", "file too large",
                   "disk full")
    assert not partial_artifacts(root, reference) and not litter(root)
    assert not (root / "models").exists()  # not even the empty folders above the fold
    ok = script(root, "train")
    assert ok.returncode == 0, ok.stderr[-3000:]
    files = comparable_files(root)
    models = {p: b for p, b in reference["files"].items() if p.startswith("models/")}
    assert {p: files.get(p) for p in models} == models
    assert not litter(root) and not partial_artifacts(root, reference)


def test_full_disk_while_predicting_is_one_line_and_the_rerun_succeeds(reference, tmp_path):
    """oof/ on a one-page tmpfs: the first array fits, the next does not (ENOSPC). One line naming the file, no
    prediction folder; with space again (remounted bigger, the same file system) the rerun writes the reference's
    predictions."""
    root = copy_project(reference, tmp_path / "p", drop=["oof", "stacks", "submissions", "submission.csv"])
    (root / "oof").mkdir()
    mount("-t", "tmpfs", "-o", "size=4k", "tmpfs", str(root / "oof"))
    try:
        proc = script(root, "predict")
        one_error_line(proc, r"cannot write \S+/oof/c/baseline/\S+", "no space left on device", "disk full")
        assert not partial_artifacts(root, reference) and not litter(root)
        assert not [p for p in (root / "oof").rglob("*") if p.is_file()]
        mount("-o", "remount,size=4m", str(root / "oof"))
        ok = script(root, "predict")
        assert ok.returncode == 0, ok.stderr[-3000:]
        files = comparable_files(root)
        assert {p: b for p, b in files.items() if p.startswith("oof/")} == \
            {p: b for p, b in reference["files"].items() if p.startswith("oof/")}
        assert not litter(root)
    finally:
        umount(root / "oof")


@pytest.mark.parametrize("how", ["read-only mount", "file-size limit 0", "chmod 555"])
def test_unwritable_output_folder_is_one_line(reference, tmp_path, how):
    """The submit stage cannot write its folder: one line, exit 1, no submission anywhere; then it can."""
    root = copy_project(reference, tmp_path / "p", drop=["submissions", "submission.csv"])
    out = root / "submissions"
    out.mkdir()
    preexec = None
    if how == "read-only mount":
        mount("--bind", str(out), str(out))
        mount("-o", "remount,bind,ro", str(out))
    elif how == "file-size limit 0":
        preexec = file_size_limit(0)
    else:
        if os.geteuid() == 0:
            pytest.skip("running as root: chmod does not stop root's writes (the read-only mount and the "
                        "file-size limit cover this)")
        out.chmod(0o555)
    try:
        proc = script(root, "submit", preexec=preexec)
        reason = {"read-only mount": "read-only file system", "file-size limit 0": "file too large",
                  "chmod 555": "permission denied"}[how]
        one_error_line(proc, r"cannot write \S+/submissions/", reason)
        assert not (root / "submission.csv").exists() and not partial_artifacts(root, reference)
        assert not [p for p in out.rglob("*") if p.is_file() or p.name.startswith(".")]
    finally:
        if how == "read-only mount":
            umount(out)
        out.chmod(0o755)
    ok = script(root, "submit")
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert comparable(root / "submission.csv") == reference["submission.csv"]


# ---- a fold that fails leaves nothing visible -----------------------------------------------------------------

@pytest.mark.parametrize("cache", [True, False])
def test_a_fold_failing_before_its_first_checkpoint_leaves_nothing(tmp_path, cache):
    """Images that do not decode. With the cache they fail while it is built, before any fold folder exists;
    without it, in fold 0's first batch, inside the hidden work folder, which goes (nothing to resume from) with
    the model folders made for it. Either way: no fold0/, no models/<comp>/<exp>/<key>/, no models/ at all.
    (A fold failing after a checkpoint keeps its hidden work folder to resume from: see the primitives below.)"""
    root = make_project(tmp_path / "p")
    folder = make_competition(root, COMP, "label", n_train=24)
    for png in (folder / "train").glob("*.png"):
        png.write_bytes(b"not an image")
    assert script(root, "folds").returncode == 0
    cmd = [PY, str(REPO / "scripts" / "02_train.py"), "--root", str(root), "--comp", COMP, "--set", OVERRIDES,
           f"runtime.cache={str(cache).lower()}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    one_error_line(proc, "cannot decode image", r"train_0\d\d\.png")
    assert not (root / "models").exists(), sorted(str(p) for p in (root / "models").rglob("*"))
    if cache:  # the staging folder went with the error (its empty <comp>/ parent may stay: not an artifact)
        assert not [p for p in (root / "cache").rglob("*") if p.is_file() or p.name.startswith(".")]
    else:
        assert not (root / "cache").exists()


# ---- the primitives, in-process -------------------------------------------------------------------------------

def test_resumable_staging_renames_only_when_complete_and_keeps_a_resumable_work_folder(tmp_path):
    from foldstack.artifacts import partial_path, resumable_staging, write_manifest
    from foldstack.errors import PipelineError

    final = tmp_path / "models" / "c" / "exp" / "key" / "fold0"
    with pytest.raises(RuntimeError):
        with resumable_staging(final, resumable=lambda w: (w / "last.pt").is_file()) as work:
            assert work == partial_path(final) and work.name == ".fold0.partial"
            assert sorted(p.name for p in final.parent.iterdir()) == [".fold0.partial"]  # never an empty container
            (work / "best.pt").write_bytes(b"x")
            raise RuntimeError("before the first checkpoint")
    assert not (tmp_path / "models").exists()  # nothing to resume: work folder and the folders made for it go

    with pytest.raises(RuntimeError):
        with resumable_staging(final, resumable=lambda w: (w / "last.pt").is_file()) as work:
            (work / "last.pt").write_bytes(b"epoch 1")
            raise RuntimeError("after a checkpoint")
    assert (partial_path(final) / "last.pt").is_file() and not final.exists()

    with pytest.raises(PipelineError, match="no manifest.json"):
        with resumable_staging(final) as work:
            assert (work / "last.pt").read_bytes() == b"epoch 1"  # resumed
    with resumable_staging(final) as work:
        assert (work / "last.pt").read_bytes() == b"epoch 1"
        (work / ".last.pt.tmp-999999999-abc").write_bytes(b"a killed writer's half file")
        write_manifest(work, "train", "key", {}, fold_key="f")
    assert sorted(p.name for p in final.iterdir()) == ["last.pt", "manifest.json"] and not partial_path(final).exists()
    with pytest.raises(PipelineError, match="refusing to overwrite"):
        with resumable_staging(final):
            pass


def test_resumable_staging_refuses_a_second_builder(tmp_path):
    from foldstack.artifacts import partial_path, resumable_staging

    final = tmp_path / "key" / "fold1"
    with pytest.raises(RuntimeError):
        with resumable_staging(final) as work:
            (work / "last.pt").write_bytes(b"epoch 1")
            code = ("import sys; from foldstack.artifacts import resumable_staging\n"
                    f"with resumable_staging({str(final)!r}): pass")
            other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            assert other.returncode != 0 and "is in use" in other.stderr  # a second process is refused
            raise RuntimeError("stop")
    assert (partial_path(final) / "last.pt").is_file()


def test_atomic_writer_reports_a_full_disk_in_one_line_and_sweeps_dead_writers_tmp_files(tmp_path):
    code = ("import resource, signal, sys\n"
            "from foldstack.utils.io import atomic_write_bytes\n"
            "from foldstack.errors import PipelineError\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
            f"try: atomic_write_bytes({str(tmp_path / 'big.bin')!r}, bytes(5000))\n"
            "except PipelineError as e: print(e); sys.exit(1)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1 and "big.bin: file too large" in proc.stdout, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no half file, no tmp file

    from foldstack.utils.io import atomic_write_bytes

    dead = tmp_path / ".x.bin.tmp-999999999-abcd"
    alive = tmp_path / f".x.bin.tmp-{os.getpid()}-abcd"
    other = tmp_path / ".y.bin.tmp-999999999-abcd"
    for p in (dead, alive, other):
        p.write_bytes(b"half")
    atomic_write_bytes(tmp_path / "x.bin", b"whole")
    assert not dead.exists() and alive.exists() and other.exists()  # this file's dead writers only
    assert (tmp_path / "x.bin").read_bytes() == b"whole"
