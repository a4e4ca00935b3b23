"""scripts/export.py: the trained folds to ONNX, checked against PyTorch and the pipeline's own predictions."""
import hashlib
import json
import shutil

import numpy as np
import onnx  # the `test` extra installs onnx and onnxruntime: a missing one fails here, never skips
import onnxruntime as ort
import pytest
from conftest import TINY, copy_project, run_here

SETTINGS = [*TINY, "predict.tta=[]"]
MARGIN = ["model.pool=gem", "model.head=arcface"]
CLASSES = ["cat", "dog", "sea turtle"]
FAST = ["--check-rows", "4", "--batch", "4", "--repeats", "1"]


def export(root, *overrides, extra=(), check=True):
    return run_here(root, "export.py", "c", *overrides, extra=[*FAST, *extra], check=check)


@pytest.fixture(scope="module")
def trained(tiny_trained, tmp_path_factory):
    """The session's tiny project (linear + avg trained) with GeM + ArcFace trained too, the first predicted
    without TTA."""
    root = copy_project(tiny_trained, tmp_path_factory.mktemp("export") / "project")
    run_here(root, "02_train.py", "c", *SETTINGS, *MARGIN)
    run_here(root, "03_predict.py", "c", *SETTINGS)
    return root


def context(root, overrides):
    from foldstack.context import Context, load_config

    return Context(root=root, comp="c", exp="baseline", cfg=load_config(root, "c", "baseline", list(overrides)))


def fold_probs(root, overrides):
    """uint8 test batches through the evaluation transform, and each fold's PyTorch probabilities on them."""
    import torch

    from foldstack.engine.inference import inference_loader, load_fold_models, predict_probs
    from foldstack.lineage import fold_dirs

    ctx = context(root, overrides)
    cpu = torch.device("cpu")
    loader = inference_loader(ctx.cfg, ctx.images, ctx.images.test_rows(np.arange(len(ctx.test.ids))), cpu)
    x = torch.cat([b for b, _ in loader]).numpy()
    per_fold = [predict_probs(load_fold_models(ctx.cfg, 3, d, cpu), loader, ctx.cfg, cpu)
                for d in fold_dirs(ctx).dirs]
    return x, per_fold


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def exported_folder(root, proc):
    final = root / proc.stdout.strip().splitlines()[-1]
    assert final.parent == root / "export" / "c" / "baseline"
    return final


def check_against_torch(root, overrides, final):
    """Every fold's ORT probabilities on all test rows equal its PyTorch ones; returns the ORT fold mean."""
    x, torch_probs = fold_probs(root, overrides)
    assert x.dtype == np.uint8 and x.shape == (8, 3, 32, 32)
    outs = []
    for k, expected in enumerate(torch_probs):
        [got] = session(final / f"fold{k}.onnx").run(["probs"], {"images": x})
        assert got.shape == (8, 3)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
        outs.append(got)
    assert not np.allclose(outs[0], outs[1], atol=1e-4)  # two different fold models, not one exported twice
    return np.mean(outs, axis=0)


def check_upscaled_against_torch(root, final, side: int):
    """Each fold's ORT probabilities at `side` px (the test batch upscaled here) against its PyTorch model fed
    the same pixels normalised here, as the contract says: not the stage's word that its graph is dynamic."""
    import torch

    from foldstack.engine.inference import load_fold_models
    from foldstack.lineage import fold_dirs

    ctx = context(root, SETTINGS)
    x, _ = fold_probs(root, SETTINGS)
    big = torch.nn.functional.interpolate(torch.from_numpy(x).float(), size=(side, side), mode="nearest")
    mean, std = (255 * torch.tensor(v).view(1, -1, 1, 1) for v in (ctx.cfg.data.mean, ctx.cfg.data.std))
    for k, fold_dir in enumerate(fold_dirs(ctx).dirs):
        [model] = load_fold_models(ctx.cfg, 3, fold_dir, torch.device("cpu"))
        with torch.inference_mode():
            expected = model.eval()((big - mean) / std).softmax(1).numpy()
        [got] = session(final / f"fold{k}.onnx").run(["probs"], {"images": big.to(torch.uint8).numpy()})
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def exported(trained):
    """The linear + avg config exported at the default sizes (32 and 64 px): (folder, the script's run)."""
    proc = export(trained, *SETTINGS)
    return exported_folder(trained, proc), proc


def test_ort_equals_torch_and_pipeline_test_predictions(trained, exported):
    root, (final, proc) = trained, exported
    assert sorted(p.name for p in final.iterdir()) == ["export.json", "fold0.onnx", "fold1.onnx", "manifest.json"]
    report = json.loads((final / "export.json").read_text())
    assert report["sizes"] == [32, 64] and report["check_rows"] == 4
    assert report["contract"]["input_dtype"] == "uint8" and report["contract"]["classes"] == CLASSES
    for k, fold in enumerate(report["folds"]):
        data = (final / f"fold{k}.onnx").read_bytes()
        assert fold["bytes"] == len(data) and fold["sha256"] == hashlib.sha256(data).hexdigest()
        assert fold["checkpoints_averaged"] == 1 and fold["dynamic_height_width"] is True
        assert sorted(fold["sizes"]) == ["32", "64"]
    assert "ORT img/s" in proc.stdout

    meta = {p.key: p.value for p in onnx.load(str(final / "fold0.onnx")).metadata_props}
    assert meta["input_name"] == "images" and meta["input_dtype"] == "uint8"
    assert json.loads(meta["classes"]) == CLASSES and json.loads(meta["img_size"]) == 32
    assert json.loads(meta["mean"]) == pytest.approx([0.485, 0.456, 0.406])
    assert meta["output"].startswith("probabilities: softmax")

    mean = check_against_torch(root, SETTINGS, final)
    [test_npy] = [p.parent / "test.npy" for p in root.glob("oof/c/baseline/*/manifest.json")
                  if json.loads(p.read_text())["config"]["predict"]["tta"] == []]  # the pipeline's, TTA off
    np.testing.assert_allclose(mean, np.load(test_npy), atol=1e-4, rtol=0)
    check_upscaled_against_torch(root, final, 64)  # the second exported size

    again = export(root, *SETTINGS)  # exported already: reported, not rebuilt
    assert exported_folder(root, again) == final and "already exported" in again.stderr


def test_second_size_and_dynamic_batch(exported):
    final, _ = exported
    s = session(final / "fold1.onnx")
    assert [i.name for i in s.get_inputs()] == ["images"] and s.get_inputs()[0].type == "tensor(uint8)"
    assert all(isinstance(d, str) for d in s.get_inputs()[0].shape[::2])  # symbolic batch, height, width
    rng = np.random.default_rng(0)
    for n, side in ((1, 64), (5, 64), (3, 48)):
        [p] = s.run(["probs"], {"images": rng.integers(0, 256, (n, 3, side, side), dtype=np.uint8)})
        assert p.shape == (n, 3)
        np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)


def test_export_sizes():
    from foldstack.errors import PipelineError
    from foldstack.stages.export import export_sizes

    assert export_sizes(32, None) == [32, 64] and export_sizes(224, None) == [224, 320]
    assert export_sizes(64, [96]) == [64, 96] and export_sizes(64, [64]) == [64]
    assert export_sizes(64, [128, 64, 96, 128]) == [64, 128, 96]
    with pytest.raises(PipelineError, match="--sizes 96 8: every side must be at least 16 px"):
        export_sizes(64, [96, 8])


def test_one_normalisation_for_training_inference_and_export():
    """data.device.Normalize is albumentations' Normalize to the bit at every pixel value, on the device path too,
    and ExportNet normalises with it: the graph's input gets exactly the numbers the pipeline's model gets."""
    import albumentations as A
    import torch
    from albumentations.pytorch import ToTensorV2

    from foldstack.config.training import Data
    from foldstack.data.device import Normalize, to_device
    from foldstack.engine.export import ExportNet

    data = Data(mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3])
    every = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    reference = A.Compose([A.Normalize(mean=data.mean, std=data.std), ToTensorV2()])(image=every)["image"]
    x = ToTensorV2()(image=every)["image"]
    assert torch.equal(Normalize.of(data)(x), reference)
    assert torch.equal(to_device(x[None], torch.device("cpu"), data)[0], reference)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3)).eval()
    with torch.inference_mode():
        assert torch.equal(ExportNet([model], data, "multiclass").eval()(x[None]), model(reference[None]).softmax(1))


def test_gem_and_arcface_export(trained):
    import torch

    final = exported_folder(trained, export(trained, *SETTINGS, *MARGIN, extra=["--sizes", "32"]))
    report = json.loads((final / "export.json").read_text())
    assert report["sizes"] == [32] and [sorted(f["sizes"]) for f in report["folds"]] == [["32"], ["32"]]
    [fold0] = trained.glob(f"{report['train']}/fold0")
    state = torch.load(fold0 / "last.pt", weights_only=True)["model"]
    assert "pool.p" in state and "head.weight" in state  # GeM's learned exponent, the margin head's weights
    check_against_torch(trained, [*SETTINGS, *MARGIN], final)


def test_missing_fold_one_line_error_nothing_written(trained, tmp_path):
    import torch

    root = tmp_path / "copy"
    shutil.copytree(trained, root, symlinks=True, ignore=shutil.ignore_patterns("export"))  # links: not .venv's GBs
    [fold1] = [d for d in root.glob("models/c/baseline/*/fold1")
               if "pool.p" not in torch.load(d / "last.pt", weights_only=True)["model"]]
    (fold1 / "manifest.json").unlink()
    proc = export(root, *SETTINGS, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: fold(s) [1] of baseline not trained for this config")
    assert "make train COMP=c EXP=baseline" in lines[-1]
    assert not (root / "export").exists()


def test_a_float_source_exports_float_input_normalised_inside_the_graph(tmp_path):
    """SETI-like input (6 float channels in their own units): the graph takes float32 as the source gives it and
    normalises inside with data.mean/std in those units; ONNX Runtime equals PyTorch on the raw batch."""
    import onnxruntime as ort
    import torch

    from foldstack.config.schema import Config
    from foldstack.engine.export import ExportNet, contract, export_fold
    from foldstack.models.factory import create_model

    mean, std = [100.0] * 6, [30.0] * 6
    cfg = Config.model_validate({"model": {"name": "test_resnet", "in_chans": 6}, "data": {"mean": mean, "std": std},
                                 "competition": {"task": "binary", "classes": ["0", "1"], "image_source": "npy"}})
    torch.manual_seed(0)
    model = create_model(cfg.model, 1, "binary").eval()
    net = ExportNet([model], cfg.data, "binary").eval()
    raw = torch.randn(4, 6, 32, 32) * 30 + 100
    entry = export_fold(net, tmp_path / "fold0.onnx", raw, [32], {"fold": 0}, batch=4, repeats=1)
    assert entry["sizes"]["32"]["max_abs_diff"] < 1e-4
    got = ort.InferenceSession(str(tmp_path / "fold0.onnx")).run(None, {"images": raw.numpy()})[0]
    with torch.inference_mode():
        expected = torch.sigmoid(model((raw - 100) / 30)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    terms = contract(cfg, 1, float_pixels=True)
    assert terms["input_dtype"] == "float32" and terms["input_shape"][1] == 6
    assert terms["normalisation"] == "inside the graph: (x - mean) / std"
