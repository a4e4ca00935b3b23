"""ImageNet weights of a timm model through the Hugging Face hub, cached in `weights/` in the hub's own layout, so
the folder can be uploaded as a Kaggle dataset and read offline (HF_HUB_OFFLINE=1).

timm picks and downloads the file; this module finds it in the cache (`scan_cache_dir`), hashes it (the models'
key), and gives one-line reasons. An unreachable hub costs one short request per process, not timm's retries."""
import logging
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from ..artifacts import stage_root
from ..errors import PipelineError, first_line
from ..utils.io import sha256_file

log = logging.getLogger("foldstack")

PROBE_TIMEOUT = 5.0  # seconds: the request that decides whether the hub is reachable
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".npz")  # a snapshot's weights files, safetensors first
NOT_CACHED = "not in the cache, and only training downloads"
OFFLINE = "HF_HUB_OFFLINE is set"


@dataclass(frozen=True)
class Weights:
    """A weights file in the cache: `path` (its snapshot path in weights/), the file's sha256, the hub repo and
    file it is, and the model's timm data config (input_size, interpolation, mean, std, crop_pct, crop_mode)."""
    path: Path
    sha256: str
    repo_id: str
    filename: str
    data_config: dict


@dataclass(frozen=True)
class Lookup:
    """What one model's lookup found: `weights`, or None and `reason` (one phrase). `hub`: false when timm has no
    hub weights for the model (or does not know it); `downloaded`: fetched by this process."""
    weights: Weights | None
    reason: str = ""
    hub: bool = True
    repo_id: str | None = None
    downloaded: bool = False


def weights_dir(root: Path) -> Path:
    return stage_root(root, "weights")


def find_weights(model_cfg, root: Path, download: bool) -> Weights | None:
    """The hub weights the model section trains from, or None (`pretrained=false`, a `pretrained_path`, or `auto`
    with none available: see `scratch_reason`); `pretrained=true` without them: PipelineError naming `make
    weights`. `download`: fetch them when not in `root/weights/` (the training stages)."""
    if model_cfg.pretrained is False or model_cfg.pretrained_path:
        return None
    if model_cfg.pretrained is True:
        pretrained_cfg(model_cfg.name)  # an unknown model or tag: that error, not "no weights"
    found = lookup(model_cfg.name, root, download)
    if found.weights is None and model_cfg.pretrained is True:
        raise PipelineError(_required_message(model_cfg.name, weights_dir(root), found))
    return found.weights


def scratch_reason(model_cfg, root: Path, download: bool = False) -> str | None:
    """Under `model.pretrained=auto` without weights: the one line saying that the models train from scratch, why,
    and how to get the weights (logged by the train stage, kept in each fold's manifest). None otherwise."""
    if model_cfg.pretrained != "auto" or model_cfg.pretrained_path:
        return None
    found = lookup(model_cfg.name, root, download)
    if found.weights is not None:
        return None
    name = model_cfg.name
    if not found.hub:
        return f"model.pretrained=auto: {found.reason}: training {name} from scratch"
    return (f"model.pretrained=auto: no weights for {name} in {weights_dir(root)}/ ({found.reason}): "
            f"training from scratch; `make weights MODEL={name}` fetches them")


def _required_message(name: str, folder: Path, found: Lookup) -> str:
    if not found.hub:
        return (f"model.pretrained=true: {found.reason}; set model.pretrained_path to a local weights file, or "
                f"model.pretrained=false (or auto) to train from scratch")
    repo = f" ({found.repo_id})" if found.repo_id else ""
    return (f"model.pretrained=true: no weights for {name}{repo} in {folder}/ ({found.reason}): run "
            f"`make weights MODEL={name}` with the network on, or copy in a weights/ folder that has them")


def lookup(name: str, root: Path, download: bool) -> Lookup:
    """The weights of timm model `name` in `root/weights/`; when `download` and not cached, timm downloads them
    there first (tried once per model and folder per process: a later call gets the same answer)."""
    cache_dir = weights_dir(root).resolve()
    found = _in_cache(name, cache_dir)
    if found.weights is not None or not found.hub or not download:
        return found
    return _download(name, found.repo_id, cache_dir)


def pretrained_cfg(name: str):
    """timm's pretrained cfg of `name` (its default tag when it has none), None for an architecture without any;
    PipelineError for an unknown model or tag."""
    import timm

    if not timm.is_model(name):
        raise PipelineError(f"model.name: unknown timm model {name!r}")
    try:
        return timm.models.get_pretrained_cfg(name)
    except RuntimeError as e:  # a tag the architecture does not have
        raise PipelineError(f"model.name: {name}: {e}") from None


def _in_cache(name: str, cache_dir: Path) -> Lookup:
    try:
        pcfg = pretrained_cfg(name)
    except PipelineError as e:
        return Lookup(None, str(e), hub=False)
    hub_id = pcfg.hf_hub_id if pcfg is not None else None
    if not hub_id:
        url = pcfg.url if pcfg is not None else None
        where = f"; timm fetches its weights from {url}" if url else ""
        return Lookup(None, f"timm has no Hugging Face hub weights for {name} (no hf_hub_id{where})", hub=False)
    repo_id, _, revision = hub_id.partition("@")
    cached = _cached_file(cache_dir, repo_id, revision or "main")
    if cached is None:
        return Lookup(None, OFFLINE if _offline() else NOT_CACHED, repo_id=repo_id)
    path, filename = cached
    return Lookup(Weights(path, sha256_file(path), repo_id, filename, _data_config(pcfg)), repo_id=repo_id)


def _cached_file(cache_dir: Path, repo_id: str, revision: str) -> tuple[Path, str] | None:
    """(snapshot path, file name in the repo) of the weights file timm downloaded into the cache's snapshot of
    `repo_id` at `revision` (branch, tag or commit; safetensors first), or None."""
    from huggingface_hub import scan_cache_dir

    if not cache_dir.is_dir():
        return None
    for repo in scan_cache_dir(cache_dir).repos:  # a broken repo folder is skipped (listed in its warnings)
        if repo.repo_type != "model" or repo.repo_id != repo_id:
            continue
        for rev in repo.revisions:
            if revision in rev.refs or rev.commit_hash == revision:
                files = sorted((WEIGHT_SUFFIXES.index(f.file_path.suffix), f.file_path.relative_to(rev.snapshot_path))
                               for f in rev.files if f.file_path.suffix in WEIGHT_SUFFIXES)
                return (rev.snapshot_path / files[0][1], files[0][1].as_posix()) if files else None
    return None


@lru_cache(maxsize=None)
def _download(name: str, repo_id: str, cache_dir: Path) -> Lookup:
    """timm's own download of `name`'s pretrained weights into cache_dir (the model it builds is dropped), then
    the cache lookup. Once per model and folder per process."""
    import timm
    # HTTPError: huggingface_hub's name for its HTTP client's transport errors (not OSErrors)
    from huggingface_hub.errors import HTTPError, RepositoryNotFoundError, RevisionNotFoundError

    problem = OFFLINE if _offline() else _hub_unreachable()
    if problem:
        return Lookup(None, problem, repo_id=repo_id)
    log.info(f"downloading the weights of {name} ({repo_id}) into {cache_dir}/")
    try:
        timm.create_model(name, pretrained=True, cache_dir=cache_dir)
    except (RepositoryNotFoundError, RevisionNotFoundError) as e:  # gated repos included
        return Lookup(None, f"the hub refuses {repo_id}: {first_line(e)}", repo_id=repo_id)
    except (OSError, HTTPError) as e:  # the hub's errors (no such file...), a dropped connection, disk full
        return Lookup(None, f"download failed: {first_line(e)}", repo_id=repo_id)
    found = _in_cache(name, cache_dir)
    if found.weights is None:
        return replace(found, reason=f"timm loaded {repo_id} but left no weights file in {cache_dir}/")
    return replace(found, downloaded=True)


@lru_cache(maxsize=1)
def _hub_unreachable() -> str:
    """Empty when the hub answers, else why not: one HEAD request through huggingface_hub's own HTTP client (its
    proxy and certificate settings) with a short timeout and no retries, once per process."""
    from huggingface_hub import constants, get_session
    from huggingface_hub.errors import HTTPError

    try:
        status = get_session().head(constants.ENDPOINT, timeout=PROBE_TIMEOUT).status_code
    except HTTPError as e:  # DNS, connection refused, timeout, proxy
        return f"hub unreachable: {first_line(e, with_type=True)}"
    return f"hub unreachable: {constants.ENDPOINT} answers HTTP {status}" if status >= 500 else ""


def _offline() -> bool:
    from huggingface_hub import is_offline_mode

    return is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def _data_config(pretrained_cfg) -> dict:
    from timm.data import resolve_data_config

    out = resolve_data_config({}, pretrained_cfg=pretrained_cfg.to_dict())
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


INTERPOLATIONS = {"bilinear": "bilinear", "bicubic": "bicubic", "area": "area", "box": "area"}


def data_defaults(data_config: dict) -> dict:
    """The `data` keys a model's timm data config gives: img_size (its input size), mean, std, interpolation
    (timm's name mapped onto area/bilinear/bicubic; any other is bicubic) and crop_pct."""
    size = data_config["input_size"]
    return dict(img_size=int(size[-1]), mean=[float(v) for v in data_config["mean"]],
                std=[float(v) for v in data_config["std"]],
                interpolation=INTERPOLATIONS.get(str(data_config.get("interpolation")), "bicubic"),
                crop_pct=min(float(data_config.get("crop_pct") or 1.0), 1.0))
