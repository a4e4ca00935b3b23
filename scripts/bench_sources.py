"""Benchmark (`make bench SOURCES=1`): every image source (competition.image_source, data/sources.py) against RGB
JPEG files through the decoded-image cache, on the same generated images. Not a test: it prints a table.

  sources       --n pictures of --size px, generated once and written in a temporary folder as one Kaggle folder
                per source: `file` RGB JPEGs; `npy` float16 arrays of 6 channels, channels first (SETI); `dicom`
                16-bit DICOM, 1 channel; `channel_files` 4 grayscale PNGs an id (Human Protein Atlas: red, green,
                blue, yellow); `table` 8-bit grayscale pixels in train.csv / test.csv (digit-recognizer). A fifth of
                the rows are test rows (the cache holds both).
  first pass    the tables read (data.table.load_train / load_test) and every image decoded and resized into the
                cache (data.cache.image_store with runtime.num_workers decoding processes: every core under `auto`).
  cached epoch  every cached row read back by the evaluation loader as engine.inference.inference_loader makes it
                (data.dataset.make_loader: ImageStore.read, data.transforms.build_transforms' evaluation
                transform, collation), the sources' epochs alternating in --rounds rounds. Float sources (npy,
                dicom) are normalised inside the loader's transform, so their figure includes work that uint8
                sources leave to the device (data.device.to_device, not timed here).
  ratio         a source's images/s over the JPEG files': for the cached epoch the median over rounds of the two
                speeds in the same round; for the first pass its one measurement (noisier).
A script of its own rather than a mode of scripts/bench.py: it needs no competition, folds or model, and writes
its own data.
    python scripts/bench_sources.py --n 2000 --size 64
"""
import argparse
import itertools
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from foldstack.config.schema import Config
from foldstack.context import Context
from foldstack.utils.timing import interleaved, seconds_of
from layout_fixtures_sources import write_dicom  # scripts/

CHANNEL_SUFFIXES = ["_red.png", "_green.png", "_blue.png", "_yellow.png"]


def pictures(n: int, size: int, seed: int = 0) -> np.ndarray:
    """n RGB uint8 pictures, size x size: smooth colour fields with grain, compressible as photos are (noise
    would make the JPEGs and PNGs several times larger and slower to decode than real ones)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, 6, 6, 3), dtype=np.uint8)
    smooth = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC) for c in coarse])
    return np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)


def write_source(source: str, folder: Path, ids: list[str], n_train: int, rgb: np.ndarray) -> dict:
    """The pictures `rgb` written in folder as `source` lays them out; the config layers (competition, model,
    data) that read them, with data.mean/std measured on what was written."""
    images = folder / "images"
    images.mkdir(parents=True)
    gray = np.stack([cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in rgb])[..., None]
    labels = [str(i % 2) for i in range(len(ids))]
    table = pd.DataFrame({"id": ids[:n_train], "label": labels[:n_train]})
    pd.DataFrame({"id": ids[n_train:], "label": "0"}).to_csv(folder / "sample_submission.csv", index=False)
    competition, planes = dict(image_source=source), rgb
    if source == "file":
        for name, picture in zip(ids, rgb):
            cv2.imwrite(str(images / f"{name}.jpg"), picture[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        competition.update(train_image_ext=".jpg", test_image_ext=".jpg")
    elif source == "npy":  # SETI: 6 float16 planes, channels first
        planes = np.concatenate([rgb / 255, (rgb / 255) ** 2], axis=-1).astype(np.float16)
        for name, array in zip(ids, planes):
            np.save(images / f"{name}.npy", np.moveaxis(array, -1, 0))
        competition.update(train_image_ext=".npy", test_image_ext=".npy")
    elif source == "dicom":  # 16-bit values, one channel
        planes = gray.astype(np.uint16) * 16  # 12 bits stored, as CT and X-ray files hold
        for name, array in zip(ids, planes):
            write_dicom(images / f"{name}.dcm", array[:, :, 0], bits_stored=12)
        competition.update(train_image_ext=".dcm", test_image_ext=".dcm")
    elif source == "channel_files":  # HPA: one grayscale PNG a channel
        planes = np.concatenate([rgb, gray], axis=-1)
        for name, array in zip(ids, planes):
            for c, suffix in enumerate(CHANNEL_SUFFIXES):
                cv2.imwrite(str(images / f"{name}{suffix}"), array[:, :, c])
        competition.update(channel_suffixes=CHANNEL_SUFFIXES)
    else:  # table: digit-recognizer's pixel0.. columns, row-major
        planes, columns = gray, [f"pixel{k}" for k in range(gray[0].size)]
        pixels = pd.DataFrame(gray.reshape(len(gray), -1), columns=columns)
        table = pd.concat([table, pixels[:n_train]], axis=1)
        pd.concat([pd.DataFrame({"id": ids[n_train:]}), pixels[n_train:].reset_index(drop=True)],
                  axis=1).to_csv(folder / "test.csv", index=False)
        competition.update(pixel_columns=["pixel*"], pixel_shape=list(gray.shape[1:3]), test_csv="test.csv")
    table.to_csv(folder / "train.csv", index=False)
    scale = 255 if planes.dtype == np.uint8 else 1  # data.mean/std: fractions of 255, else the source's units
    mean = (planes.mean((0, 1, 2), dtype=np.float64) / scale).tolist()
    std = (planes.std((0, 1, 2), dtype=np.float64) / scale).tolist()
    competition.update(id_col="id", target_cols=["label"], classes=["0", "1"], submission_columns=["id", "label"],
                       train_dir="images", test_dir="images")
    return dict(competition=competition, model=dict(in_chans=len(mean), pretrained=False),
                data=dict(mean=mean, std=std))


SOURCES = {  # image_source -> what the bench writes
    "file": "RGB JPEG files",
    "npy": ".npy float16, 6 channels first (SETI)",
    "dicom": "DICOM uint16 (12 bits stored), 1 channel",
    "channel_files": "4 grayscale PNGs an id (HPA)",
    "table": "uint8 pixels in a CSV (digit-recognizer)",
}


def bench(args) -> tuple[list[dict], dict]:
    """(one row per source: first-pass and cached-epoch images/s, their ratios to the JPEG files', cache bytes;
    how it ran: device, workers, seconds spent writing the sources)."""
    from foldstack.data.dataset import ImageDataset, make_loader
    from foldstack.data.transforms import build_transforms
    from foldstack.engine.runtime import decode_workers, num_workers, resolve_device

    rgb = pictures(args.n, args.size)
    ids, n_train = [f"img{i:05d}" for i in range(args.n)], args.n - args.n // 5
    rows, epochs, written = [], {}, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for source in SOURCES:
            t0 = time.perf_counter()
            layers = write_source(source, Path(tmp, "input", source), ids, n_train, rgb)
            written += time.perf_counter() - t0
            layers["data"].update(img_size=args.size, batch_size=args.batch)
            layers["runtime"] = dict(progress=False, num_workers=args.workers)
            cfg = Config.model_validate(layers)
            ctx = Context(Path(tmp), source, "baseline", cfg)
            first = seconds_of(lambda: (ctx.train, ctx.test, ctx.images))  # noqa: B023 (called at once)
            store, device = ctx.images, resolve_device(cfg.runtime.device)
            transform = build_transforms(cfg.data, train=False, float_pixels=store.float_pixels)
            loader = make_loader(ImageDataset(store, np.arange(len(store)), None, transform), 2 * args.batch,
                                 num_workers(cfg, device))  # as engine.inference.inference_loader builds it

            def epoch(_, loader=loader):
                for _ in loader:
                    pass

            epochs[source] = (epoch, itertools.repeat(None), len(store))
            rows.append(dict(source=source, channels=store.channels, dtype=str(store.array.dtype),
                             bytes=store.array.nbytes // len(store), first=len(store) / first))
        speed, ratio = interleaved(epochs, 1, 1, args.rounds, device)
    for row in rows:
        row.update(first_ratio=row["first"] / rows[0]["first"], epoch=speed[row["source"]],
                   epoch_ratio=ratio[row["source"]])
    return rows, dict(device=device, loader_workers=num_workers(cfg, device), decode_workers=decode_workers(cfg),
                      written=written)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="images per source (a fifth of them test rows)")
    p.add_argument("--size", type=int, default=64, help="side of the generated images and of the cache, in px")
    p.add_argument("--batch", type=int, default=64, help="data.batch_size (the evaluation loader reads 2x that)")
    p.add_argument("--rounds", type=int, default=5, help="cached epochs of each source, alternating")
    p.add_argument("--workers", default="auto", type=lambda v: v if v == "auto" else int(v),
                   help="runtime.num_workers: decoding processes of the first pass and loader workers")
    args = p.parse_args(argv)
    rows, run = bench(args)
    import torch

    print(f"{args.n} images of {args.size}x{args.size} per source (written in {run['written']:.1f} s) on "
          f"{run['device']}, {torch.get_num_threads()} threads: first pass with {run['decode_workers']} decoding "
          f"process(es), cached epochs of batch {2 * args.batch} with {run['loader_workers']} loader worker(s), "
          f"{args.rounds} rounds\n")
    print("| image_source | written as | channels, cache dtype | cache bytes/image | first pass images/s | "
          "ratio to JPEG | cached epoch images/s | ratio to JPEG (median of rounds) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['source']} | {SOURCES[r['source']]} | {r['channels']}, {r['dtype']} | {r['bytes']:,} | "
              f"{r['first']:,.0f} | {r['first_ratio']:.2f} | {r['epoch']:,.0f} | {r['epoch_ratio']:.2f} |")


if __name__ == "__main__":
    main()
