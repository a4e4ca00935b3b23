"""Image sources other than RGB files (data/sources.py): arrays, DICOM, one file per channel, pixels in a CSV or a
JSON table. Each is read to the pixels written, goes through the cache and the transforms with its C channels,
and bad input stops with one line naming the file."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from foldstack.audit.duplicates import content_hashes
from foldstack.config.competition import Competition
from foldstack.config.schema import Config
from foldstack.config.training import Data, Model
from foldstack.data.cache import image_store
from foldstack.data.sources import ChannelFiles, NpyFiles, TablePixels, file_samples, read_dicom
from foldstack.data.table import load_test, load_train
from foldstack.data.transforms import build_transforms
from foldstack.errors import PipelineError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from layout_fixtures_sources import write_dicom  # noqa: E402  (scripts/: one DICOM writer for tests, survey, bench)


def test_npy_channels_first_float16_is_read_as_hwc_float32(tmp_path):
    rng = np.random.default_rng(0)
    seti = rng.normal(size=(6, 27, 25)).astype(np.float16)  # SETI's layout: 6 cadence snippets first
    gray = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    np.save(tmp_path / "a.npy", seti)
    np.save(tmp_path / "b.npy", gray)
    out = NpyFiles([tmp_path / "a.npy"]).read(0)
    assert out.shape == (27, 25, 6) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.moveaxis(seti, 0, -1).astype(np.float32))
    kept = NpyFiles([tmp_path / "b.npy"], float_pixels=False).read(0)
    assert kept.dtype == np.uint8 and kept.shape == (9, 7, 1) and (kept[:, :, 0] == gray).all()


def test_sixteen_bit_files_are_kept_at_sixteen_bits_in_rgb_order(tmp_path):
    gray = np.arange(300, dtype=np.uint16).reshape(15, 20) * 200  # 0..59,800: 8 bits would keep 234 of 300 values
    colour = np.stack([gray, gray // 2, gray // 3], -1)  # RGB
    assert cv2.imwrite(str(tmp_path / "g.tif"), gray) and cv2.imwrite(str(tmp_path / "c.png"), colour[:, :, ::-1])
    samples = file_samples("file", [tmp_path / "g.tif", tmp_path / "c.png"])
    assert samples.float_pixels and samples.cache_dtype == np.float32  # float16 would overflow above 65,504
    assert np.array_equal(samples.read(0), gray[:, :, None].astype(np.float32))
    assert np.array_equal(samples.read(1), colour.astype(np.float32))
    cv2.imwrite(str(tmp_path / "flat.png"), (gray // 256).astype(np.uint8))
    assert not file_samples("file", [tmp_path / "flat.png"]).float_pixels  # 8-bit files: as before
    mixed = file_samples("file", [tmp_path / "g.tif", tmp_path / "flat.png"])
    with pytest.raises(PipelineError, match=r"flat.png: uint8 pixels, where the first images are 16-bit"):
        mixed.read(1)
    with pytest.raises(PipelineError, match=r"g.tif is a 16-bit image but .*flat.png is 8-bit"):
        file_samples("file", [tmp_path / "g.tif"]) + file_samples("file", [tmp_path / "flat.png"])


def test_dicom_rescale_window_and_monochrome1(tmp_path):
    raw = (np.arange(64, dtype=np.uint16) * 10).reshape(8, 8)
    write_dicom(tmp_path / "ct.dcm", raw, slope=2, intercept=-100, window=(300, 400))
    ct = read_dicom(tmp_path / "ct.dcm")
    assert ct.shape == (8, 8, 1) and ct.dtype == np.float32
    np.testing.assert_array_equal(ct[:, :, 0], np.clip(raw * 2.0 - 100, 100, 500))  # HU, clipped to the window
    write_dicom(tmp_path / "xray.dcm", raw, photometric="MONOCHROME1")
    inverted = read_dicom(tmp_path / "xray.dcm")[:, :, 0]
    np.testing.assert_array_equal(inverted, raw.max() + raw.min() - raw.astype(np.float32))  # bright = dense


def test_bad_arrays_and_dicoms_stop_with_one_line_naming_the_file(tmp_path):
    write_dicom(tmp_path / "empty.dcm", np.zeros((4, 4)), pixel_data=False)
    with pytest.raises(PipelineError, match=r"empty\.dcm: a DICOM without pixel data"):
        read_dicom(tmp_path / "empty.dcm")
    (tmp_path / "junk.dcm").write_bytes(b"not a dicom at all")
    with pytest.raises(PipelineError, match=r"cannot read DICOM: .*junk\.dcm"):
        read_dicom(tmp_path / "junk.dcm")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(PipelineError, match=r"cube\.npy: an array of shape \(2, 3, 4, 5\)"):
        NpyFiles([tmp_path / "cube.npy"]).read(0)


def _store_context(root, samples_train, samples_test, cfg):
    def table(samples):
        return SimpleNamespace(samples=samples, paths=samples.paths, fingerprint=lambda: "f", source="t.csv")
    return SimpleNamespace(root=root, comp="c", cfg=cfg, train=table(samples_train), test=table(samples_test))


def test_float_arrays_go_through_a_float16_cache_and_are_normalised_in_their_units(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(4):
        np.save(tmp_path / f"{i}.npy", (rng.normal(size=(2, 16, 16)) * 30 + 100).astype(np.float16))
    files = [tmp_path / f"{i}.npy" for i in range(4)]
    mean, std = [100.0, 90.0], [30.0, 15.0]
    cfg = Config.model_validate({"model": {"in_chans": 2}, "data": {"img_size": 16, "mean": mean, "std": std},
                                 "competition": {"image_source": "npy"}, "runtime": {"progress": False}})
    store = image_store(_store_context(tmp_path, file_samples("npy", files[:3]), file_samples("npy", files[3:]), cfg))
    assert store.array.dtype == np.float16 and store.array.shape == (4, 16, 16, 2)  # float16 arrays: kept as such
    decoded = NpyFiles(files).read(3)
    cached = store.read([3])[0]
    assert cached.dtype == np.float32
    np.testing.assert_array_equal(cached, decoded)  # lossless
    write_dicom(tmp_path / "big.dcm", np.full((8, 8), 65535))  # beyond float16: the cache keeps float32
    assert file_samples("dicom", [tmp_path / "big.dcm"]).cache_dtype == np.float32
    x = build_transforms(cfg.data, train=False, float_pixels=True)(image=cached)["image"]
    expected = (torch.from_numpy(cached).permute(2, 0, 1) - torch.tensor(mean).view(2, 1, 1)) / torch.tensor(
        std).view(2, 1, 1)
    torch.testing.assert_close(x, expected, rtol=1e-5, atol=1e-5)


def test_an_image_with_another_channel_count_is_refused_naming_it(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((6, 8, 8), np.float16))
    np.save(tmp_path / "b.npy", np.zeros((5, 8, 8), np.float16))
    cfg = Config.model_validate({"model": {"in_chans": 6}, "data": {"img_size": 8, "mean": [0] * 6, "std": [1] * 6},
                                 "runtime": {"progress": False, "cache": False}})
    store = image_store(_store_context(tmp_path, NpyFiles([tmp_path / "a.npy"]), NpyFiles([tmp_path / "b.npy"]), cfg))
    assert store.read([0])[0].shape == (8, 8, 6)
    with pytest.raises(PipelineError, match=r"b\.npy: 5 channel\(s\), where the model takes 6"):
        store.read([1])


def _hpa_like(root: Path, ids, suffixes=("_red.png", "_green.png", "_blue.png", "_yellow.png")):
    rng = np.random.default_rng(2)
    planes = {}
    for i in ids:
        for s in suffixes:
            planes[i, s] = rng.integers(0, 256, (12, 12), dtype=np.uint8)
            cv2.imwrite(str(root / f"{i}{s}"), planes[i, s])
    return planes


def test_channel_files_stack_in_suffix_order_and_a_missing_one_is_named(tmp_path):
    (tmp_path / "train").mkdir()
    suffixes = ["_red.png", "_green.png", "_blue.png", "_yellow.png"]
    planes = _hpa_like(tmp_path / "train", ["a", "b"])
    pd.DataFrame({"Id": ["a", "b"], "Target": ["0 2", "1"]}).to_csv(tmp_path / "train.csv", index=False)
    comp = Competition(input_dir=str(tmp_path), id_col="Id", target_cols=["Target"], task="multilabel",
                       classes=["0", "1", "2"], image_source="channel_files", channel_suffixes=suffixes)
    train = load_train(comp, tmp_path, "hpa")
    image = train.samples.read(1)
    assert image.shape == (12, 12, 4) and image.dtype == np.uint8
    for c, s in enumerate(suffixes):
        assert (image[:, :, c] == planes["b", s]).all()
    assert [p.name for p in train.samples.files(0)] == [f"a{s}" for s in suffixes]
    (tmp_path / "train" / "b_yellow.png").unlink()
    with pytest.raises(PipelineError, match=r"train\.csv row 3: channel file not found: .*b_yellow\.png"):
        load_train(comp, tmp_path, "hpa")


def _digits_like(root: Path, n_train=6, n_test=4, side=8):
    rng = np.random.default_rng(3)
    train = rng.integers(0, 256, (n_train, side * side))
    test = rng.integers(0, 256, (n_test, side * side))
    cols = [f"pixel{i}" for i in range(side * side)]
    frame = pd.DataFrame(train, columns=cols)
    frame.insert(0, "label", [str(i % 3) for i in range(n_train)])
    frame.to_csv(root / "train.csv", index=False)
    pd.DataFrame(test, columns=cols).to_csv(root / "test.csv", index=False)
    pd.DataFrame({"ImageId": range(1, n_test + 1), "Label": 0}).to_csv(root / "sample_submission.csv", index=False)
    return train.reshape(n_train, side, side), test.reshape(n_test, side, side)


def test_pixels_in_a_csv_are_images_ids_by_row_number(tmp_path):
    train_pixels, test_pixels = _digits_like(tmp_path)
    comp = Competition(input_dir=str(tmp_path), id_col="ImageId", target_cols=["label"], classes=["0", "1", "2"],
                       submission_columns=["ImageId", "Label"], image_source="table", pixel_columns=["pixel*"],
                       pixel_shape=[8, 8], test_csv="test.csv")
    train, test = load_train(comp, tmp_path, "digits"), load_test(comp, tmp_path, "digits")
    assert train.ids == ["1", "2", "3", "4", "5", "6"] and list(train.frame.columns) == ["ImageId", "label"]
    assert isinstance(train.samples, TablePixels) and train.samples.array.dtype == np.uint8
    np.testing.assert_array_equal(train.samples.read(4)[:, :, 0], train_pixels[4])
    np.testing.assert_array_equal(test.samples.read(3)[:, :, 0], test_pixels[3])
    hashes = content_hashes(train.samples, progress=False)
    assert len(set(hashes)) == 6
    pd.DataFrame({"ImageId": range(1, 4), "Label": 0}).to_csv(tmp_path / "sample_submission.csv", index=False)
    with pytest.raises(PipelineError, match=r"test\.csv: 4 rows but 3 in sample_submission\.csv"):
        load_test(comp, tmp_path, "digits")


def _statoil_like(root: Path, n=5, side=8):
    rng = np.random.default_rng(4)
    records = [dict(id=f"r{i}", band_1=rng.normal(-20, 5, side * side).round(3).tolist(),
                    band_2=rng.normal(-25, 4, side * side).round(3).tolist(), inc_angle="na" if i == 0 else 39.5,
                    is_iceberg=i % 2) for i in range(n)]
    (root / "train.json").write_text(json.dumps(records))
    test = [{k: v for k, v in r.items() if k != "is_iceberg"} | {"id": f"t{i}"} for i, r in enumerate(records)]
    (root / "test.json").write_text(json.dumps(test[::-1]))  # another order than the sample submission's
    pd.DataFrame({"id": [f"t{i}" for i in range(n)], "is_iceberg": 0.5}).to_csv(root / "sample_submission.csv",
                                                                               index=False)
    return records, test


def test_json_band_lists_are_channels_matched_to_the_submission_by_id(tmp_path):
    records, test = _statoil_like(tmp_path)
    comp = Competition(input_dir=str(tmp_path), train_csv="train.json", target_cols=["is_iceberg"], task="binary",
                       classes=["0", "1"], submission_columns=["id", "is_iceberg"], image_source="table",
                       pixel_columns=["band_1", "band_2"], pixel_shape=[8, 8], test_csv="test.json")
    train, sub = load_train(comp, tmp_path, "statoil"), load_test(comp, tmp_path, "statoil")
    assert train.frame["inc_angle"].tolist()[:2] == ["na", "39.5"] and "band_1" not in train.frame.columns
    image = train.samples.read(2)
    assert image.shape == (8, 8, 2) and image.dtype == np.float32
    np.testing.assert_allclose(image[:, :, 1].ravel(), records[2]["band_2"], rtol=1e-6)
    np.testing.assert_allclose(sub.samples.read(1)[:, :, 0].ravel(), test[1]["band_1"], rtol=1e-6)  # id t1
    records[3]["band_2"] = records[3]["band_2"][:10]
    (tmp_path / "train.json").write_text(json.dumps(records))
    with pytest.raises(PipelineError, match=r"train\.json record 4: band_2 holds 10 values, not 8x8"):
        load_train(comp, tmp_path, "statoil")


@pytest.mark.parametrize("channels,float_pixels", [(4, False), (6, True), (1, False)])
def test_every_preset_keeps_c_channels_and_auto_augment_needs_rgb(channels, float_pixels):
    data = Data(img_size=16, augment="heavy", random_erasing=0.5, mean=[0.5] * channels, std=[0.25] * channels)
    image = np.random.default_rng(5).integers(0, 256, (20, 20, channels)).astype(
        np.float32 if float_pixels else np.uint8)
    t = build_transforms(data, train=True, float_pixels=float_pixels)
    for seed in range(8):
        t.set_random_seed(seed)
        out = t(image=image)["image"]
        assert out.shape == (channels, 16, 16)
    with pytest.raises(PipelineError, match=r"data.auto_augment='trivial' needs RGB 8-bit images"):
        build_transforms(data.model_copy(update=dict(auto_augment="trivial")), train=True, float_pixels=float_pixels)


def test_rgb_weights_load_into_a_four_channel_model_as_timm_adapts_them(tmp_path):
    import timm

    from foldstack.models.factory import create_model

    rgb = timm.create_model("resnet10t", num_classes=0)
    torch.save(rgb.state_dict(), tmp_path / "w.pth")
    net = create_model(Model(name="resnet10t", in_chans=4, pretrained_path=str(tmp_path / "w.pth")), 3)
    w3, w4 = rgb.state_dict()["conv1.0.weight"], net.backbone.state_dict()["conv1.0.weight"]
    torch.testing.assert_close(w4, torch.cat([w3, w3[:, :1]], 1) * 3 / 4)  # repeated, rescaled: timm's rule
    assert net.pretrained["missing"] == 0 and net(torch.zeros(2, 4, 32, 32)).shape == (2, 3)


def test_the_channel_count_is_one_number_across_model_and_normalisation():
    with pytest.raises(ValueError, match="model.in_chans is 4 but data.mean has 3 values"):
        Config.model_validate({"model": {"in_chans": 4}})
    assert "in_chans" not in Config().model_dump()["model"]  # RGB configs hash as they did before the key
    assert "image_source" not in Config().model_dump()["competition"]


def _seti_like(root: Path, n_train=8, n_test=3):
    rng = np.random.default_rng(6)
    ids = [f"{'ab01'[i % 4]}{i:05d}" for i in range(n_train + n_test)]
    for split, rows in (("train", ids[:n_train]), ("test", ids[n_train:])):
        for i in rows:
            (root / split / i[0]).mkdir(parents=True, exist_ok=True)
            np.save(root / split / i[0] / f"{i}.npy", rng.normal(size=(6, 12, 10)).astype(np.float16))
    pd.DataFrame({"id": ids[:n_train], "target": [0, 1] * (n_train // 2)}).to_csv(root / "train_labels.csv",
                                                                                  index=False)
    pd.DataFrame({"id": ids[n_train:], "target": 0.5}).to_csv(root / "sample_submission.csv", index=False)


def test_discovery_writes_the_source_channels_and_normalisation_it_found(tmp_path):
    import yaml

    from foldstack.discover import write_competition_config

    layouts = {"digits": lambda d: _digits_like(d, n_train=12), "statoil": _statoil_like, "seti": _seti_like}
    expected = {"digits": ("table", 1, {"test_csv": "test.csv", "pixel_columns": ["pixel[0-9]*"],
                                        "pixel_shape": [8, 8], "id_col": "ImageId"}),
                "statoil": ("table", 2, {"train_csv": "train.json", "test_csv": "test.json",
                                         "pixel_columns": ["band_1", "band_2"], "task": "binary"}),
                "seti": ("npy", 6, {"train_csv": "train_labels.csv", "train_path": "{id[0]}/{id}",
                                    "test_path": "{id[0]}/{id}", "train_image_ext": ".npy"})}
    for name, build in layouts.items():
        folder = tmp_path / name
        folder.mkdir()
        build(folder)
        write_competition_config(tmp_path / f"{name}.yaml", folder)
        text = (tmp_path / f"{name}.yaml").read_text()
        config = yaml.safe_load(text)
        kind, channels, keys = expected[name]
        assert config["competition"]["image_source"] == kind and config["model"]["in_chans"] == channels
        assert {k: config["competition"][k] for k in keys} == keys
        assert len(config["data"]["mean"]) == len(config["data"]["std"]) == channels
        assert f"# found: {kind} inputs of {channels} channel(s)" in text
        cfg = Config.model_validate(config)  # the written sections agree with each other
        comp = cfg.competition.model_copy(update=dict(input_dir=str(folder)))
        train = load_train(comp, tmp_path, name)
        assert train.samples.read(0).shape[2] == channels and len(load_test(comp, tmp_path, name)) > 0
    # the normalisation is the train pixels' own: statoil's bands, in dB
    statoil = yaml.safe_load((tmp_path / "statoil.yaml").read_text())["data"]
    assert -21 < statoil["mean"][0] < -19 and -26 < statoil["mean"][1] < -24 and 3.5 < statoil["std"][1] < 4.5


def test_channel_files_discovered_in_colour_order_and_missing_train_arrays_refused(tmp_path):
    from foldstack.discover import discover_competition

    (tmp_path / "hpa" / "train").mkdir(parents=True)
    (tmp_path / "hpa" / "test").mkdir()
    _hpa_like(tmp_path / "hpa" / "train", ["t0", "t1", "t2", "t3"], ("_yellow.png", "_blue.png", "_red.png", "_green.png"))
    _hpa_like(tmp_path / "hpa" / "test", ["u0"], ("_yellow.png", "_blue.png", "_red.png", "_green.png"))
    pd.DataFrame({"Id": ["t0", "t1", "t2", "t3"], "Target": ["0 1", "1", "0", "2 1"]}).to_csv(
        tmp_path / "hpa" / "train.csv", index=False)
    pd.DataFrame({"Id": ["u0"], "Predicted": "0"}).to_csv(tmp_path / "hpa" / "sample_submission.csv", index=False)
    comp = discover_competition(tmp_path / "hpa")
    assert comp["image_source"] == "channel_files" and comp["task"] == "multilabel"
    assert comp["channel_suffixes"] == ["_red.png", "_green.png", "_blue.png", "_yellow.png"]
    _seti_like(tmp_path / "seti")
    for path in (tmp_path / "seti" / "train").rglob("*.npy"):
        path.rename(path.with_suffix(".npz"))
    with pytest.raises(PipelineError, match=r"the test images are npy files, but no train folder"):
        discover_competition(tmp_path / "seti")


def test_make_predict_lists_the_sources_files_and_refuses_pixels_in_tables(tmp_path):
    from foldstack.stages.predict_images import find_images

    (tmp_path / "a").mkdir()
    np.save(tmp_path / "a" / "x.npy", np.zeros((6, 4, 4), np.float16))
    cv2.imwrite(str(tmp_path / "a" / "y.png"), np.zeros((4, 4, 3), np.uint8))
    write_dicom(tmp_path / "a" / "z.dcm", np.zeros((4, 4)))
    assert find_images(tmp_path, "npy")[1] == ["a/x.npy"] and find_images(tmp_path, "dicom")[1] == ["a/z.dcm"]
    assert find_images(tmp_path)[1] == ["a/y.png"]
    with pytest.raises(PipelineError, match="make predict reads one file per image; competition.image_source is table"):
        find_images(tmp_path, "table")
