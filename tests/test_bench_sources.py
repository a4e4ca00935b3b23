"""scripts/bench_sources.py (`make bench SOURCES=1`): every image source through the decoded-image cache against
RGB JPEG files, run in-process on a few tiny generated images (the figures themselves are not asserted)."""
import importlib.util
import re
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_sources.py"
sys.path.insert(0, str(SCRIPT.parent))  # the bench imports its DICOM writer from scripts/layout_fixtures_sources


def test_the_sources_bench_prints_a_row_with_ratios_per_source(capsys):
    spec = importlib.util.spec_from_file_location("bench_sources", SCRIPT)
    bench_sources = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_sources)
    bench_sources.main(["--n", "10", "--size", "16", "--rounds", "1", "--workers", "0"])
    out = capsys.readouterr().out
    rows = {m[0]: m[1:] for m in re.findall(
        r"^\| (\w+) \| [^|]+ \| (\d), (\w+) \| ([\d,]+) \| [\d,]+ \| ([\d.]+) \| [\d,]+ \| ([\d.]+) \|$", out, re.M)}
    assert list(rows) == ["file", "npy", "dicom", "channel_files", "table"]
    # channels and cache dtype as each source is read: float16 arrays as float16, DICOM as float32, 8-bit as uint8
    assert {k: v[:3] for k, v in rows.items()} == {
        "file": ("3", "uint8", "768"), "npy": ("6", "float16", "3,072"), "dicom": ("1", "float32", "1,024"),
        "channel_files": ("4", "uint8", "1,024"), "table": ("1", "uint8", "256")}
    assert rows["file"][3:] == ("1.00", "1.00")  # the reference row
    assert all(float(first) > 0 and float(epoch) > 0 for _, _, _, first, epoch in rows.values())
    assert "10 images of 16x16 per source" in out and "0 loader worker(s)" in out
