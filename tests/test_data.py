import numpy as np
import pytest
from PIL import Image

from foldstack.config.training import Data
from foldstack.data.images import read_image
from foldstack.data.transforms import build_transforms
from foldstack.errors import PipelineError


@pytest.mark.parametrize("ext", [".gif", ".tif", ".bmp", ".jpg", ".png"])
def test_read_image_gives_rgb_for_every_format(tmp_path, ext):
    pixels = np.zeros((6, 5, 3), np.uint8)
    pixels[..., 0] = 200
    Image.fromarray(pixels).save(tmp_path / f"img{ext}")
    img = read_image(tmp_path / f"img{ext}")
    assert img.shape == (6, 5, 3) and img.dtype == np.uint8
    assert abs(int(img[..., 0].mean()) - 200) < 8 and img[..., 2].mean() < 8  # red stays red (no BGR mix-up)


def test_grayscale_becomes_three_channels_and_garbage_is_named(tmp_path):
    Image.fromarray(np.full((4, 4), 90, np.uint8)).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (4, 4, 3)
    (tmp_path / "bad.jpg").write_bytes(b"\\x00garbage")
    with pytest.raises(PipelineError, match="cannot decode image: .*bad.jpg"):
        read_image(tmp_path / "bad.jpg")


def test_eval_transform_is_deterministic_and_sized():
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8)
    transform = build_transforms(Data(img_size=16), train=False)
    a, b = transform(image=image)["image"], transform(image=image)["image"]
    assert tuple(a.shape) == (3, 16, 16) and (a == b).all()
