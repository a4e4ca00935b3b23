"""ImageNet weights through the Hugging Face hub cache in weights/ (model.pretrained: auto | true | false), offline:
a cache laid out as the hub lays it out, read by huggingface_hub's own offline resolution (HF_HUB_OFFLINE=1, set
for every test by conftest). The weights are timm's test_resnet (hub repo timm/test_resnet.r160_in1k: input 160,
bilinear, crop 0.95, mean/std 0.5) with random values saved with safetensors."""
import argparse
import contextlib
import hashlib
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save

from foldstack.cli import run_stage
from foldstack.config.loading import sections
from foldstack.config.training import Model
from foldstack.context import Context, load_config
from foldstack.errors import PipelineError
from foldstack.models.factory import create_model
from foldstack.models.hub import find_weights, scratch_reason
from foldstack.stages import folds
from foldstack.lineage import TRAIN_SECTIONS, train_dir
from foldstack.utils.io import stable_hash

from conftest import TINY, make_competition, run_script

REPO_ID = "timm/test_resnet.r160_in1k"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
# TINY trains test_resnet at data.img_size=32: set, so it wins over the weights' 160.
ONE_FOLD = ["--fold", "0"]


def hub_cache(root: Path) -> tuple[str, dict]:
    """root/weights/ holding test_resnet's weights as hf_hub_download leaves them: blobs/<sha256>, a snapshot
    symlink to it under the commit refs/main names. Returns (sha256 of the file, its state dict)."""
    gen = torch.Generator().manual_seed(7)
    model = timm.create_model("test_resnet")  # with its 1000-class classifier, as the hub file has it
    state = {k: (v + 0.01 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    data = save(state)
    sha = hashlib.sha256(data).hexdigest()
    repo = root / "weights" / f"models--{REPO_ID.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / sha).write_bytes(data)
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    (repo / "snapshots" / COMMIT / "model.safetensors").symlink_to(Path("..") / ".." / "blobs" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return sha, state


def tree(root):
    """Every file outside input/ with its size and mtime (as tests/test_catalogue.py checks refusals)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and "input" not in p.relative_to(root).parts[:1]}


def build_folds(root, *overrides):
    """01_folds.py's stage in this process (the scripts' start-up is most of a tiny run's time)."""
    run_stage(folds.run, "", argv=["--root", str(root), "--comp", "c", "--set", *TINY, *overrides])


def fold0(root):
    [manifest] = root.glob("models/c/baseline/*/fold0/manifest.json")
    return manifest.parent, json.loads(manifest.read_text())


def old_key(cfg, fold_key: str) -> str:
    """The models' key without hub weights: the training sections, model.pretrained left out (any setting)."""
    parts = {"folds": fold_key, **sections(cfg, TRAIN_SECTIONS)}
    assert parts["model"].pop("pretrained") == cfg.model.pretrained
    return stable_hash(parts)


# --- the lookup and the model, in process -----------------------------------------------------------------------

def test_the_cache_is_found_offline_and_loads_bit_for_bit(tmp_path):
    sha, state = hub_cache(tmp_path)
    from huggingface_hub import hf_hub_download

    # huggingface_hub's real offline resolution finds the same file
    path = Path(hf_hub_download(REPO_ID, "model.safetensors", cache_dir=tmp_path / "weights"))
    for name in ("test_resnet", "test_resnet.r160_in1k"):  # the default tag, or named
        w = find_weights(Model(name=name), tmp_path, download=False)
        assert (w.repo_id, w.filename, w.sha256) == (REPO_ID, "model.safetensors", sha)
        assert w.path == path and w.path.resolve() == (path.parent / "../../blobs" / sha).resolve()
        assert w.data_config["input_size"] == [3, 160, 160] and w.data_config["interpolation"] == "bilinear"
    assert find_weights(Model(name="test_resnet", pretrained=False), tmp_path, download=False) is None
    assert find_weights(Model(name="test_resnet", pretrained_path=str(path)), tmp_path, download=False) is None

    model = create_model(Model(name="test_resnet"), num_classes=3, weights=w.path)
    own = model.backbone.state_dict()
    backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}  # the hub file's classifier: dropped
    assert set(own) == set(backbone)
    assert all(torch.equal(own[k], backbone[k]) for k in own)  # bit for bit
    counted = [k for k in own if not k.endswith("num_batches_tracked")]  # what coverage counts
    assert model.pretrained["loaded"] == model.pretrained["total"] == len(counted) and model.pretrained["missing"] == 0
    assert model.pretrained["unused"] == 2 and model.head.fc.weight.shape[0] == 3  # fc.weight/bias; a new head
    with pytest.raises(PipelineError, match="model.pretrained: file not found"):
        create_model(Model(name="test_resnet"), 3, weights=tmp_path / "missing.safetensors")


def test_data_config_of_the_weights_fills_the_data_keys_no_layer_set(tmp_path):
    make_competition(tmp_path, "c")
    sha, _ = hub_cache(tmp_path)
    model = ["model.name=test_resnet"]
    cfg = load_config(tmp_path, "c", "baseline", model)
    d = cfg.data
    assert (d.img_size, d.mean, d.std, d.interpolation, d.crop_pct) == (160, [0.5] * 3, [0.5] * 3, "bilinear", 0.95)
    explicit = load_config(tmp_path, "c", "baseline", model + ["data.img_size=48", "data.interpolation=area"]).data
    e = explicit
    assert (e.img_size, e.interpolation, e.mean, e.crop_pct) == (48, "area", [0.5] * 3, 0.95)
    for scratch in (model + ["model.pretrained=false"], []):  # no weights: the schema's defaults (resnet18: none)
        d = load_config(tmp_path, "c", "baseline", scratch).data
        assert (d.img_size, d.mean, d.interpolation, d.crop_pct) == (64, [0.485, 0.456, 0.406], "area", 1.0)
    # another experiment, through Context.derive, gets the same treatment; a value its file sets wins
    (tmp_path / "configs" / "exp").mkdir()
    (tmp_path / "configs" / "exp" / "big.yaml").write_text("data:\n  img_size: 96\n")
    (tmp_path / "configs" / "exp" / "long.yaml").write_text("train:\n  epochs: 20\n")
    ctx = Context(tmp_path, "c", "baseline", cfg, args=argparse.Namespace(set=model))
    long, big = ctx.derive(exp="long"), ctx.derive(exp="big")
    assert ctx.weights.sha256 == sha and long.weights.sha256 == sha and long.cfg.data.img_size == 160
    assert (big.cfg.data.img_size, big.cfg.data.std, big.cfg.train.epochs) == (96, [0.5] * 3, 10)


def test_true_and_auto_without_hub_weights(tmp_path):
    """A model timm has no hub weights for (gcvit: a release URL), and an empty cache under HF_HUB_OFFLINE."""
    with pytest.raises(PipelineError, match="no hf_hub_id"):
        find_weights(Model(name="gcvit_tiny", pretrained=True), tmp_path, download=True)
    assert find_weights(Model(name="gcvit_tiny"), tmp_path, download=True) is None
    assert "training gcvit_tiny from scratch" in scratch_reason(Model(name="gcvit_tiny"), tmp_path)
    with pytest.raises(PipelineError) as err:
        find_weights(Model(name="test_resnet", pretrained=True), tmp_path, download=True)
    assert "`make weights MODEL=test_resnet`" in str(err.value) and f"{tmp_path / 'weights'}/" in str(err.value)
    assert "HF_HUB_OFFLINE" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "weights").exists()


def hub_at(monkeypatch, endpoint: str) -> None:
    """HF_HUB_OFFLINE unset and the hub at `endpoint`; this process's hub answers forgotten (again at teardown,
    by the caller's `forget_hub_answers`)."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    forget_hub_answers()


def forget_hub_answers() -> None:
    from foldstack.models import hub

    hub._hub_unreachable.cache_clear()
    hub._download.cache_clear()


@pytest.fixture
def local_hub(monkeypatch):
    """The hub a local HTTP server; yields (routes: path (or "*", any other) -> (status, headers, body), the
    request lines it got for the endpoint itself and for files)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    requests, routes = [], {}

    class Handler(BaseHTTPRequestHandler):
        def answer(self, body: bool):
            if self.path == "/" or "/resolve/" in self.path:  # the probe and file requests (not the client's others)
                requests.append(self.requestline)
            status, headers, data = routes.get(self.path, routes.get("*", (404, {}, b"")))
            self.send_response(status)
            for k, v in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(k, v)
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_HEAD(self):
            self.answer(False)

        def do_GET(self):
            self.answer(True)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hub_at(monkeypatch, f"http://127.0.0.1:{server.server_address[1]}")
    yield routes, requests
    forget_hub_answers()  # not this server's answers for the tests after this one
    server.shutdown()
    server.server_close()


def test_timm_downloads_into_the_cache_that_the_lookup_reads(tmp_path, local_hub):
    """The weights stage's path: timm.create_model(pretrained=True, cache_dir=weights/) fetches the file through
    huggingface_hub (from a local server standing in for the hub); the lookup finds it there, hashes it, and
    every later lookup reads it from the cache."""
    routes, requests = local_hub
    hub_cache(tmp_path / "served")  # the hub's copy: the file hub_cache writes
    served = tmp_path / "served" / "weights" / f"models--{REPO_ID.replace('/', '--')}"
    data = (served / "snapshots" / COMMIT / "model.safetensors").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    routes["/"] = (200, {}, b"")
    routes[f"/{REPO_ID}/resolve/main/model.safetensors"] = (200, {"X-Repo-Commit": COMMIT, "ETag": f'"{sha}"'}, data)
    w = find_weights(Model(name="test_resnet", pretrained=True), tmp_path, download=True)
    assert (w.repo_id, w.filename, w.sha256) == (REPO_ID, "model.safetensors", sha)
    snapshot = tmp_path / "weights" / f"models--{REPO_ID.replace('/', '--')}" / "snapshots" / COMMIT
    assert w.path == snapshot / "model.safetensors" and w.path.resolve().parent.name == "blobs"
    assert requests[0] == "HEAD / HTTP/1.1" and requests[-1].startswith("GET /timm/test_resnet.r160_in1k/resolve")
    asked = len(requests)
    assert find_weights(Model(name="test_resnet"), tmp_path, download=True) == w and len(requests) == asked
    assert scratch_reason(Model(name="test_resnet"), tmp_path, download=True) is None


def test_a_repo_the_hub_refuses_is_named(tmp_path, local_hub):
    routes, requests = local_hub
    routes["/"] = (200, {}, b"")  # the hub answers; every file: the hub's "no such repo (or gated)" answer
    routes["*"] = (404, {"X-Error-Code": "RepoNotFound"}, b"")
    with pytest.raises(PipelineError, match=r"no weights for test_resnet \(timm/test_resnet.r160_in1k\) in .*"
                                            r"\(the hub refuses timm/test_resnet.r160_in1k: "):
        find_weights(Model(name="test_resnet", pretrained=True), tmp_path, download=True)
    repo = tmp_path / "weights" / f"models--{REPO_ID.replace('/', '--')}"
    assert len(requests) == 2 and not (repo / "snapshots").exists()


def test_an_unreachable_hub_costs_one_request_per_process(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE unset, the hub a local server that hangs up on every request (counting them): the first
    request fails at once, is not retried, and no later lookup (another download stage, another model) asks
    again; timm's download never starts."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def hang_up():
        with contextlib.suppress(OSError):  # the test closed the server
            while True:
                conn, _ = server.accept()
                accepted.append(conn.recv(1024))
                conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    hub_at(monkeypatch, f"http://127.0.0.1:{server.getsockname()[1]}")
    try:
        start = time.monotonic()
        for name in ("test_resnet", "test_resnet", "test_efficientnet"):
            assert find_weights(Model(name=name), tmp_path, download=True) is None
        ours = [r for r in accepted if b"/api/" not in r.split(b"\r\n")[0]]  # not the client's own registry fetch
        assert len(ours) == 1 and ours[0].startswith(b"HEAD / ") and time.monotonic() - start < 10
        reason = scratch_reason(Model(name="test_efficientnet"), tmp_path, download=True)
        assert "(hub unreachable: RemoteProtocolError: Server disconnected" in reason
        with pytest.raises(PipelineError, match="hub unreachable"):
            find_weights(Model(name="test_resnet", pretrained=True), tmp_path, download=True)
        assert [r for r in accepted if b"/api/" not in r.split(b"\r\n")[0]] == ours
        assert not (tmp_path / "weights").exists()
    finally:
        forget_hub_answers()
        server.close()


# --- through the real scripts -------------------------------------------------------------------------------------

def test_training_with_the_cached_weights(tmp_path):
    make_competition(tmp_path, "c", n_train=16, n_test=4)
    sha, _ = hub_cache(tmp_path)
    build_folds(tmp_path)
    proc = run_script(tmp_path, "02_train.py", "c", *TINY, extra=ONE_FOLD)
    assert "from scratch" not in proc.stderr
    folder, manifest = fold0(tmp_path)
    record = manifest["metrics"]["pretrained"]
    assert {k: record[k] for k in ("source", "repo_id", "filename", "sha256")} == dict(
        source="hub", repo_id=REPO_ID, filename="model.safetensors", sha256=sha)
    assert record["loaded"] == record["total"] > 0 and record["missing"] == 0
    data = manifest["config"]["data"]  # the weights' data config, and the explicit data.img_size=32
    assert (data["img_size"], data["mean"], data["interpolation"], data["crop_pct"]) == (
        32, [0.5] * 3, "bilinear", 0.95)
    # the same run with model.pretrained=false: the key it had before model.pretrained existed, another folder
    cfg = load_config(tmp_path, "c", "baseline", TINY + ["model.pretrained=false"])
    scratch = train_dir(Context(tmp_path, "c", "baseline", cfg), manifest["fold_key"]).path
    assert scratch.name == old_key(cfg.model_copy(update={"model": Model(name="test_resnet")}), manifest["fold_key"])
    assert folder.parent.name == train_dir(Context(tmp_path, "c", "baseline", load_config(
        tmp_path, "c", "baseline", TINY)), manifest["fold_key"]).path.name != scratch.name


def test_without_weights_true_is_refused_and_auto_trains_from_scratch(tmp_path):
    make_competition(tmp_path, "c", n_train=16, n_test=4)
    build_folds(tmp_path, "model.pretrained=true")  # the split needs no weights
    # true: one line naming `make weights` and the folder, nothing written
    before = tree(tmp_path)
    proc = run_script(tmp_path, "02_train.py", "c", *TINY, "model.pretrained=true", check=False)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "make weights MODEL=test_resnet" in lines[0] and f"{tmp_path / 'weights'}/" in lines[0]
    assert tree(tmp_path) == before and not (tmp_path / "models").exists()
    # auto: trains from scratch, says so once, records it; the key is the one from before model.pretrained
    proc = run_script(tmp_path, "02_train.py", "c", *TINY, extra=ONE_FOLD)
    said = [ln for ln in proc.stderr.splitlines() if "from scratch" in ln]
    assert len(said) == 1 and "make weights MODEL=test_resnet" in said[0] and "HF_HUB_OFFLINE" in said[0]
    folder, manifest = fold0(tmp_path)
    assert manifest["metrics"]["pretrained"]["source"] == "scratch"
    assert manifest["metrics"]["pretrained"]["reason"] in said[0]
    assert folder.parent.name == old_key(load_config(tmp_path, "c", "baseline", TINY), manifest["fold_key"])
    # false: the same key, so the same folder
    cfg = load_config(tmp_path, "c", "baseline", TINY + ["model.pretrained=false"])
    assert train_dir(Context(tmp_path, "c", "baseline", cfg), manifest["fold_key"]).path == folder.parent


def test_make_weights_script(tmp_path):
    """No --model: the configured experiments' models (baseline's resnet18, an experiment's test_resnet; not one
    with model.pretrained=false), no competition data needed. test_resnet is in weights/: printed; resnet18 is
    not, and HF_HUB_OFFLINE is set: one line, exit 1."""
    sha, _ = hub_cache(tmp_path)
    (tmp_path / "configs" / "exp").mkdir(parents=True)
    (tmp_path / "configs" / "exp" / "tiny.yaml").write_text("model:\n  name: test_resnet\n")
    (tmp_path / "configs" / "exp" / "off.yaml").write_text("model:\n  name: test_vit\n  pretrained: false\n")
    proc = run_script(tmp_path, "weights.py", "none", check=False)
    size = (tmp_path / "weights" / f"models--{REPO_ID.replace('/', '--')}" / "blobs" / sha).stat().st_size
    assert proc.stdout.strip() == (f"test_resnet: {REPO_ID} model.safetensors {size / 1e6:.1f} MB sha256 {sha} "
                                   f"(already in {tmp_path / 'weights'}/)")
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: no weights for resnet18 (HF_HUB_OFFLINE is set): run `make weights`")
    assert "test_vit" not in proc.stderr and not (tmp_path / "input").exists()
