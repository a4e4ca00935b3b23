"""`make download`: the kaggle command it builds, the credentials check, and the unpacking of the zips Kaggle serves
(made here: this machine cannot reach Kaggle, so the CLI call itself is tested only for the command it runs)."""
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from foldstack.discover import discover_competition
from foldstack.errors import PipelineError
from foldstack.description import KAGGLE_METRIC_FILE, api_metric
from foldstack.kaggle import credentials_problem, download_command, evaluation_metric, record_metric, unpack

from conftest import PY, REPO, make_competition


def files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def zip_folder(zip_path: Path, folder: Path, under: str = "") -> None:
    with zipfile.ZipFile(zip_path, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, str(Path(under) / p.relative_to(folder)))


def kaggle_zip(tmp_path: Path) -> tuple[Path, dict]:
    """A competition zipped as Kaggle serves many: the CSVs at the top, train/ and test/ as zips inside the zip."""
    original = make_competition(tmp_path / "made", "c")
    staged = tmp_path / "staged"
    staged.mkdir()
    for name in ("train.csv", "sample_submission.csv"):
        (staged / name).write_bytes((original / name).read_bytes())
    for split in ("train", "test"):
        zip_folder(staged / f"{split}.zip", original / split, under=split)
    download = tmp_path / "input" / "c"
    download.mkdir(parents=True)
    zip_folder(download / "c.zip", staged)
    return download, {k: v for k, v in files(original).items() if k != "test_labels.csv"}


def test_nested_zips_unpack_to_the_competition_folder(tmp_path):
    download, expected = kaggle_zip(tmp_path)
    unpacked = unpack(download)
    assert [p.name for p in unpacked] == ["c.zip", "test.zip", "train.zip"]  # the outer one, then the two inside
    assert files(download) == expected  # every file, byte for byte, and no zip left
    assert discover_competition(download) == discover_competition(tmp_path / "made" / "input" / "c")


def test_a_zip_member_outside_the_folder_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as z:
        z.writestr("train.csv", "id,label\n")
        z.writestr("../escaped.txt", "x")
    with pytest.raises(PipelineError, match=r"evil.zip: entry '../escaped.txt' points outside"):
        unpack(tmp_path)
    assert not (tmp_path.parent / "escaped.txt").exists() and not (tmp_path / "train.csv").exists()


def test_a_broken_zip_is_named(tmp_path):
    (tmp_path / "cut.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(PipelineError, match="cut.zip: not a valid zip"):
        unpack(tmp_path)


def test_the_command_is_the_official_cli(tmp_path):
    cli = tmp_path / "bin" / "kaggle"
    assert download_command("aerial-cactus", tmp_path / "input" / "aerial-cactus", cli) == [
        str(cli), "competitions", "download", "-c", "aerial-cactus", "-p", str(tmp_path / "input" / "aerial-cactus")]
    with pytest.raises(PipelineError, match="not a Kaggle competition slug"):
        download_command("../x", tmp_path, cli)


def test_credentials_as_the_cli_reads_them(tmp_path):
    assert "no Kaggle credentials" in credentials_problem({}, tmp_path)
    assert credentials_problem({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, tmp_path) is None
    assert "no Kaggle credentials" in credentials_problem({"KAGGLE_USERNAME": "u"}, tmp_path)
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert credentials_problem({}, tmp_path) is None
    assert "no Kaggle credentials" in credentials_problem({"KAGGLE_CONFIG_DIR": str(tmp_path / "other")}, tmp_path)


def run_download(root: Path, slug: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")} | {"HOME": str(root)}
    return subprocess.run([PY, str(REPO / "scripts" / "download.py"), "--comp", slug, "--root", str(root)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_without_credentials_one_line_and_nothing_written(tmp_path):
    proc = run_download(tmp_path, "aerial-cactus")
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert "no Kaggle credentials" in lines[0] and "kaggle.json" in lines[0]
    assert not (tmp_path / "input").exists()


def test_a_folder_already_there_is_unpacked_and_described_not_downloaded(tmp_path):
    download, expected = kaggle_zip(tmp_path)
    (download / "notes.txt").write_text("the competition's own files are here already")
    proc = run_download(tmp_path, "c")  # no credentials needed: nothing to download
    assert proc.returncode == 0, proc.stderr
    assert files(download) == {**expected, "notes.txt": b"the competition's own files are here already"}
    described = yaml.safe_load(proc.stdout.split("would infer", 1)[1].split("\n", 1)[1])["competition"]
    assert described == discover_competition(download) and described["classes"] == ["cat", "dog", "sea turtle"]
    assert not (tmp_path / "configs").exists()


# Kaggle's API names the metric (make download records it): the wire format of its competitions list, as kagglesdk
# parses an HTTP response (this machine cannot reach Kaggle, so the request itself is not made here).
LIST_RESPONSE = json.dumps({"competitions": [
    {"ref": "https://www.kaggle.com/competitions/herbarium-2021-fgvc8", "evaluationMetric": "Macro F1 Score"},
    {"ref": "https://www.kaggle.com/competitions/herbarium-2022-fgvc9", "evaluationMetric": "MacroFScore"}]})


def test_the_metric_kaggles_api_names_is_read_from_its_competitions_list():
    from kagglesdk.competitions.types.competition_api_service import ApiListCompetitionsResponse

    response = ApiListCompetitionsResponse.from_json(LIST_RESPONSE)
    assert evaluation_metric(response, "herbarium-2022-fgvc9") == "MacroFScore"  # its own, not the 2021 one's
    assert evaluation_metric(response, "herbarium-2021-fgvc8") == "Macro F1 Score"
    assert evaluation_metric(response, "aerial-cactus-identification") is None
    assert evaluation_metric(None, "x") is None


@pytest.mark.parametrize("name, task, metric", [
    ("CategorizationAccuracy", "multiclass", "accuracy"), ("Macro F1 Score", "multiclass", "macro_f1"),
    ("MacroFScore", "multiclass", "macro_f1"), ("MAP@{K}", "multiclass", "map_at_k"),
    ("Multiclass Loss", "multiclass", "log_loss"), ("Log Loss", "binary", "log_loss"), ("AUC", "binary", "roc_auc"),
    ("Mean Columnwise AUC", "multilabel", "roc_auc"), ("Quadratic Weighted Kappa", "multiclass", "qwk"),
    ("Mean F1-Score", "multilabel", "micro_f1"), ("RMSE", "regression", "rmse"),
    ("Mean Absolute Error", "regression", "mae")])
def test_kaggle_api_metric_names_map_to_ours(tmp_path, name, task, metric):
    path = tmp_path / KAGGLE_METRIC_FILE
    path.write_text(json.dumps({"evaluation_metric": name}))
    got, why = api_metric(path, task)
    assert got == metric and repr(name) in why


def test_a_kaggle_api_metric_we_do_not_compute_or_that_misfits_the_task_is_one_line(tmp_path):
    path = tmp_path / KAGGLE_METRIC_FILE
    path.write_text(json.dumps({"evaluation_metric": "Dice Coefficient"}))
    with pytest.raises(PipelineError, match=r"\.kaggle_metric\.json: Kaggle scores this competition on 'Dice "
                                            r"Coefficient', which foldstack does not compute; delete that file"):
        api_metric(path, "multiclass")
    path.write_text(json.dumps({"evaluation_metric": "RMSE"}))
    with pytest.raises(PipelineError, match="scored on rmse, but the target was read as a multiclass task"):
        api_metric(path, "multiclass")
    path.write_text("{")
    with pytest.raises(PipelineError, match="unreadable"):
        api_metric(path, "multiclass")


def test_discovery_takes_the_recorded_api_metric_after_description_md(tmp_path):
    folder = make_competition(tmp_path, "c")
    assert discover_competition(folder)["metric"] == "accuracy"  # the task's default: nothing names one
    (folder / KAGGLE_METRIC_FILE).write_text(json.dumps({"slug": "c", "evaluation_metric": "Multiclass Loss"}))
    assert discover_competition(folder)["metric"] == "log_loss"
    (folder / "description.md").write_text("# Overview\n\n## Evaluation\n\nSubmissions are scored on macro F1.\n")
    assert discover_competition(folder)["metric"] == "macro_f1"  # the evaluation page's own words come first


def test_record_metric_without_the_kaggle_package_or_network_warns_and_writes_nothing(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="foldstack"):
        assert record_metric("some-competition", tmp_path) is None
    assert not (tmp_path / KAGGLE_METRIC_FILE).exists()
    assert "could not read some-competition's evaluation metric from Kaggle's API" in caplog.text
