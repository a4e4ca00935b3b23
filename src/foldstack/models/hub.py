"""ImageNet weights of a timm model through the Hugging Face hub, cached in the project's `weights/` folder in the
hub's own cache layout (models--<org>--<repo>/blobs, snapshots, refs), so that the folder can be uploaded as a
Kaggle dataset and read with the network off (HF_HUB_OFFLINE=1).

`find_weights` resolves the model's timm pretrained cfg (a name with or without its tag: `resnet18` is timm's
default `timm/resnet18.a1_in1k`), looks in the cache for the files timm's `load_state_dict_from_hf` reads
(`model.safetensors`, then `pytorch_model.bin`) and, when asked to, downloads the first the hub has with
`hf_hub_download`, as timm does. An unreachable hub costs seconds: a HEAD request with a short timeout and no
retries decides before any download starts, and its failure is remembered for the rest of the process. Every
answer, and every file's sha256, is memoised per process: the stages and contexts of one run ask once."""
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import PipelineError

log = logging.getLogger("foldstack")

PROBE_TIMEOUT = 5.0  # seconds: the HEAD request that decides whether the hub is reachable, and hf_hub_download's
FILES = ("model.safetensors", "pytorch_model.bin")  # what timm reads from a hub repo, in its order
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
    hub weights for the model (or does not know it); `repo_id`: its hub repo when resolved; `downloaded`: fetched
    by this process; `tried_download`: the hub was asked (or known unreachable)."""
    weights: Weights | None
    reason: str = ""
    hub: bool = True
    repo_id: str | None = None
    downloaded: bool = False
    tried_download: bool = False


_lookups: dict[tuple[str, str], Lookup] = {}
_hashes: dict[tuple[str, int, int], str] = {}
_hub_down: list[str] = []  # the first network failure of this process: later lookups do not try again


def weights_dir(root: Path) -> Path:
    return Path(root) / "weights"


def _shown(folder: Path) -> str:
    return f"{folder}/"


def find_weights(model_cfg, root: Path, download: bool) -> Weights | None:
    """The hub weights `model_cfg` (the config's model section) trains from, or None: `pretrained=false`, a
    `pretrained_path` (a local file: it wins, nothing is looked up), or `auto` with none available (the train
    stage says why: `scratch_reason`). `pretrained=true` with none available: PipelineError naming
    `make weights`. `download`: fetch them when they are not in `root/weights/` (the training stages)."""
    if model_cfg.pretrained is False or model_cfg.pretrained_path:
        return None
    if model_cfg.pretrained is True:
        pretrained_cfg(model_cfg.name)  # an unknown model or tag: that error, not "no weights"
    found = lookup(model_cfg.name, root, download)
    if found.weights is None and model_cfg.pretrained is True:
        raise PipelineError(_required_message(model_cfg.name, weights_dir(root), found))
    return found.weights


def scratch_reason(model_cfg, root: Path) -> str | None:
    """Under `model.pretrained=auto` without weights: the one line saying that the models train from scratch,
    why, and how to get the weights (logged by the train stage, recorded in each fold's manifest). None
    otherwise."""
    if model_cfg.pretrained != "auto" or model_cfg.pretrained_path:
        return None
    found = lookup(model_cfg.name, root, download=False)
    if found.weights is not None:
        return None
    name = model_cfg.name
    if not found.hub:
        return f"model.pretrained=auto: {found.reason}: training {name} from scratch"
    return (f"model.pretrained=auto: no weights for {name} in {_shown(weights_dir(root))} ({found.reason}): "
            f"training from scratch; `make weights MODEL={name}` fetches them")


def _required_message(name: str, folder: Path, found: Lookup) -> str:
    if not found.hub:
        return (f"model.pretrained=true: {found.reason}; set model.pretrained_path to a local weights file, or "
                f"model.pretrained=false (or auto) to train from scratch")
    repo = f" ({found.repo_id})" if found.repo_id else ""
    return (f"model.pretrained=true: no weights for {name}{repo} in {_shown(folder)} ({found.reason}): run "
            f"`make weights MODEL={name}` with the network on, or copy in a weights/ folder that has them")


def lookup(name: str, root: Path, download: bool) -> Lookup:
    """The weights of timm model `name` in `root/weights/`, downloaded there first when `download` and not
    cached. Memoised: a later call with download=False reuses any answer; one with download=True reuses an
    answer that found weights or already tried the hub."""
    cache_dir = weights_dir(root).resolve()
    key = (name, str(cache_dir))
    known = _lookups.get(key)
    if known is None or (download and known.weights is None and not known.tried_download and known.hub):
        known = _lookups[key] = _lookup(name, cache_dir, download)
    return known


def pretrained_cfg(name: str):
    """timm's pretrained cfg of `name` (its default tag when it has none), None for an architecture without any;
    PipelineError for an unknown model or tag."""
    import timm

    if not timm.is_model(name):
        raise PipelineError(f"model.name: unknown timm model {name!r}")
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError as e:  # a tag the architecture does not have
        raise PipelineError(f"model.name: {name}: {e}") from None
    return cfg


def _data_config(pretrained_cfg) -> dict:
    from timm.data import resolve_data_config

    out = resolve_data_config({}, pretrained_cfg=pretrained_cfg.to_dict())
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def _filenames(pretrained_cfg) -> list[str]:
    """The files timm's hub loading tries, in its order: a safetensors alternative first."""
    given = getattr(pretrained_cfg, "hf_hub_filename", None)
    if not given:
        return list(FILES)
    if given.endswith(".bin"):
        safe = "open_clip_model.safetensors" if given == "open_clip_pytorch_model.bin" else given[:-4] + ".safetensors"
        return [safe, given]
    return [given]


def _lookup(name: str, cache_dir: Path, download: bool) -> Lookup:
    from huggingface_hub import try_to_load_from_cache

    try:
        pcfg = pretrained_cfg(name)
    except PipelineError as e:
        return Lookup(None, str(e), hub=False)
    hub_id = getattr(pcfg, "hf_hub_id", None) if pcfg is not None else None
    if not hub_id:
        url = getattr(pcfg, "url", None) if pcfg is not None else None
        where = f"; timm fetches its weights from {url}" if url else ""
        return Lookup(None, f"timm has no Hugging Face hub weights for {name} (no hf_hub_id{where})", hub=False)
    repo_id, _, revision = hub_id.partition("@")
    revision = revision or None
    files = _filenames(pcfg)
    for filename in files:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
        if isinstance(cached, str) and Path(cached).is_file():
            return Lookup(_weights(Path(cached), repo_id, filename, pcfg), repo_id=repo_id)
    if not download and not _offline():
        return Lookup(None, NOT_CACHED, repo_id=repo_id)
    if _offline():
        return Lookup(None, OFFLINE, repo_id=repo_id, tried_download=True)
    if _hub_down:
        return Lookup(None, _hub_down[0], repo_id=repo_id, tried_download=True)
    filename, problem = _available(repo_id, revision, files)
    if filename is None:
        return Lookup(None, problem, repo_id=repo_id, tried_download=True)
    from huggingface_hub import hf_hub_download

    log.info(f"downloading {repo_id}/{filename} into {_shown(cache_dir)}")
    try:
        path = hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir, etag_timeout=PROBE_TIMEOUT)
    except Exception as e:  # the connection dropped mid-file, a full disk, ...
        return Lookup(None, f"download failed: {_first_line(e)}", repo_id=repo_id, tried_download=True)
    return Lookup(_weights(Path(path), repo_id, filename, pcfg), repo_id=repo_id, downloaded=True,
                  tried_download=True)


def _available(repo_id: str, revision: str | None, files: list[str]) -> tuple[str | None, str]:
    """(the first of `files` the hub has, "") or (None, why not): one HEAD request per file, a short timeout
    and no retries. A network failure is remembered for the process."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    for filename in files:
        try:
            get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), timeout=PROBE_TIMEOUT)
            return filename, ""
        except RemoteEntryNotFoundError:
            continue
        except (RepositoryNotFoundError, RevisionNotFoundError) as e:  # gated repos included
            return None, f"the hub refuses {repo_id}: {_first_line(e)}"
        except Exception as e:  # DNS, connection refused, timeout, proxy, 5xx
            _hub_down.append(f"hub unreachable: {_first_line(e)}")
            return None, _hub_down[0]
    return None, f"the hub has none of {', '.join(files)} in {repo_id}"


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return lines[0] if lines else type(err).__name__


def _weights(path: Path, repo_id: str, filename: str, pretrained_cfg) -> Weights:
    return Weights(path, sha256(path), repo_id, filename, _data_config(pretrained_cfg))


def sha256(path: Path) -> str:
    """The file's sha256 (hex), memoised per process by its resolved path, size and mtime."""
    real = Path(path).resolve()
    st = real.stat()
    key = (str(real), st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        with open(real, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


INTERPOLATIONS = {"bilinear": "bilinear", "bicubic": "bicubic", "area": "area", "box": "area"}


def data_defaults(data_config: dict) -> dict:
    """The `data` keys a model's timm data config gives: img_size (its input size), mean, std, interpolation
    (timm's name mapped onto area/bilinear/bicubic; any other is bicubic) and crop_pct."""
    size = data_config["input_size"]
    return dict(img_size=int(size[-1]), mean=[float(v) for v in data_config["mean"]],
                std=[float(v) for v in data_config["std"]],
                interpolation=INTERPOLATIONS.get(str(data_config.get("interpolation")), "bicubic"),
                crop_pct=min(float(data_config.get("crop_pct") or 1.0), 1.0))
