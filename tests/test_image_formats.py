"""read_image: every format gives the right RGB uint8 pixels, checked against arrays built here, or one PipelineError
line naming the file; never partly decoded pixels. JPEG is lossy: its images are flat 8x8 blocks saved without
chroma subsampling, so each block decodes to within a few levels of its colour."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from conftest import TINY, make_competition, run_here
from foldstack.data.images import read_image
from foldstack.errors import PipelineError
from test_errors import assert_one_line_error

BLOCK_COLOURS = np.array([[230, 20, 20], [20, 210, 30], [30, 40, 220], [240, 240, 30], [200, 40, 210], [20, 20, 20]],
                         np.uint8)
# EXIF orientation -> the array op PIL's exif_transpose applies (the orientation the camera was held in).
ORIENTATIONS = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
                5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
                7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}


def blocks(rows: int, cols: int) -> np.ndarray:
    """(8 rows) x (8 cols) image of flat 8x8 blocks, each a different colour: asymmetric, so any flip shows."""
    grid = BLOCK_COLOURS[:rows * cols].reshape(rows, cols, 3)
    return np.repeat(np.repeat(grid, 8, axis=0), 8, axis=1)


def save(tmp_path, name: str, image: Image.Image, **options):
    path = tmp_path / name
    image.save(path, **options)
    return path


def jpeg_bytes(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95, subsampling=0, **options)
    return buffer.getvalue()


def assert_rgb(image: np.ndarray, expected: np.ndarray, atol: int = 0):
    assert image.dtype == np.uint8 and image.shape == expected.shape, (image.dtype, image.shape, expected.shape)
    assert np.abs(image.astype(int) - expected.astype(int)).max() <= atol


def test_rgba_png_drops_alpha_and_keeps_the_stored_colour(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    alpha = np.tile(np.array([0, 1, 128, 255], np.uint8), (12, 3))[:, :10]  # fully transparent pixels included
    path = save(tmp_path, "a.png", Image.fromarray(np.dstack([rgb, alpha]), "RGBA"))
    assert_rgb(read_image(path), rgb)  # not composited on any background


def test_palette_gif_gives_palette_colours_even_for_the_transparent_index(tmp_path):
    index = np.random.default_rng(1).integers(0, 4, (9, 7), dtype=np.uint8)
    palette = np.array([[250, 10, 10], [10, 250, 10], [10, 10, 250], [120, 60, 30]], np.uint8)
    gif = Image.fromarray(index, "P")
    gif.putpalette(palette.ravel().tolist())
    path = save(tmp_path, "p.gif", gif, transparency=3, background=0)
    assert_rgb(read_image(path), palette[index])


def test_palette_png_gives_palette_colours(tmp_path):
    index = np.random.default_rng(2).integers(0, 4, (9, 7), dtype=np.uint8)
    palette = np.array([[5, 6, 7], [200, 100, 50], [0, 255, 255], [90, 90, 90]], np.uint8)
    png = Image.fromarray(index, "P")
    png.putpalette(palette.ravel().tolist())
    path = save(tmp_path, "p.png", png, transparency=bytes([255, 0, 128, 255]))
    assert_rgb(read_image(path), palette[index])


SIXTEEN_BIT = np.array([[0, 255, 256, 1000], [20000, 32768, 50000, 65535]], np.uint16)


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    path = save(tmp_path, "g16.png", Image.fromarray(SIXTEEN_BIT))
    with Image.open(path) as im:
        assert im.mode == "I;16"
    expected = np.repeat(np.round(SIXTEEN_BIT / 257)[..., None], 3, axis=2)
    assert_rgb(read_image(path), expected, atol=1)  # value/257 or value>>8; clipping would make 255 of most


def test_16bit_rgb_png_is_scaled_not_clipped(tmp_path):
    rgb16 = np.stack([SIXTEEN_BIT, SIXTEEN_BIT[:, ::-1], np.full_like(SIXTEEN_BIT, 30000)], axis=2)
    path = tmp_path / "rgb16.png"
    path.write_bytes(cv2.imencode(".png", rgb16[..., ::-1])[1].tobytes())  # OpenCV writes BGR order
    assert path.read_bytes()[24] == 16  # IHDR bit depth
    assert_rgb(read_image(path), np.round(rgb16 / 257), atol=1)


def test_grayscale_jpeg_gives_three_equal_channels(tmp_path):
    gray = blocks(2, 3)[..., 0]
    path = tmp_path / "g.jpg"
    path.write_bytes(jpeg_bytes(gray))
    image = read_image(path)
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 0] == image[..., 2]).all()
    assert_rgb(image, np.repeat(gray[..., None], 3, axis=2), atol=3)


def test_adobe_cmyk_jpeg_gives_the_right_colours(tmp_path):
    primaries = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [0, 0, 0]]], np.uint8)
    rgb = np.repeat(np.repeat(primaries, 8, axis=0), 8, axis=1)  # pure red, green, blue blocks
    cmyk = np.asarray(Image.fromarray(rgb).convert("CMYK")).copy()  # C = 255 - R ..., K = 0
    cmyk[8:, 8:] = (100, 0, 0, 100)  # a block with black ink: RGB = 255 (1 - C/255) (1 - K/255)
    expected = rgb.copy()
    expected[8:, 8:] = np.round(255 * (1 - np.array([100, 0, 0]) / 255) * (1 - 100 / 255))
    path = save(tmp_path, "cmyk.jpg", Image.fromarray(cmyk, "CMYK"), quality=95, subsampling=0)
    assert b"Adobe" in path.read_bytes()  # inverted CMYK with an Adobe APP14 segment, as Photoshop writes it
    image = read_image(path)
    assert_rgb(image, expected, atol=4)
    with Image.open(path) as im:
        assert_rgb(image, np.asarray(im.convert("RGB")), atol=2)


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_is_applied_as_pil_exif_transpose(tmp_path, orientation):
    pixels = blocks(3, 2)  # 24 x 16, a different colour in each corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    path.write_bytes(jpeg_bytes(pixels, exif=exif.tobytes()))
    image = read_image(path)
    assert_rgb(image, ORIENTATIONS[orientation](pixels), atol=4)
    with Image.open(path) as im:
        assert_rgb(image, np.asarray(ImageOps.exif_transpose(im).convert("RGB")), atol=1)


def with_thumbnail(jpeg: bytes, thumbnail: bytes) -> bytes:
    """A complete JPEG inside a segment before the image, where cameras keep their EXIF thumbnail."""
    segment = b"\xff\xfe" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail  # a COM segment
    return jpeg[:2] + segment + jpeg[2:]


def test_jpeg_with_a_thumbnail_and_bytes_after_its_end_is_read(tmp_path):
    pixels = blocks(2, 3)
    path = tmp_path / "motion.jpg"
    data = with_thumbnail(jpeg_bytes(pixels), jpeg_bytes(blocks(1, 1)))
    path.write_bytes(data + np.random.default_rng(3).bytes(3000))  # e.g. a motion photo's video after the EOI
    assert_rgb(read_image(path), pixels, atol=4)


def noise(size: int = 64) -> np.ndarray:
    return np.random.default_rng(4).integers(0, 256, (size, size, 3), dtype=np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def gif_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).quantize(64).save(buffer, "GIF")
    return buffer.getvalue()


REFUSED = {
    "empty.jpg": (lambda: b"", "(empty file)"),
    "random.jpg": (lambda: np.random.default_rng(5).bytes(2000), "not an image format OpenCV or PIL can read"),
    "truncated.jpg": (lambda: jpeg_bytes(noise())[:-600], "truncated"),
    "truncated_progressive.jpg": (lambda: jpeg_bytes(noise(), progressive=True)[:-600], "truncated"),
    "truncated_with_thumbnail.jpg": (lambda: with_thumbnail(jpeg_bytes(noise()), jpeg_bytes(noise(8)))[:-600],
                                     "truncated"),
    "truncated.png": (lambda: png_bytes(noise())[:-600], "truncated"),
    "no_iend.png": (lambda: png_bytes(noise())[:-12], "truncated"),
    "truncated.gif": (lambda: gif_bytes(noise())[:-600], "truncated"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unreadable_file_is_refused_with_one_line_naming_it(tmp_path, name):
    content, reason = REFUSED[name]
    path = tmp_path / name
    path.write_bytes(content())
    with pytest.raises(PipelineError) as err:
        read_image(path)
    message = str(err.value)
    assert message.startswith(f"cannot decode image: {path} (") and reason in message and "\n" not in message


@pytest.mark.parametrize("name", sorted(n for n in REFUSED if n.startswith(("truncated", "no_iend")) and
                                         not n.endswith(".gif")))
def test_truncated_jpeg_and_png_are_refused_even_if_pil_would_load_them(tmp_path, monkeypatch, name):
    """The end-marker check, not PIL's refusal (which a user's LOAD_TRUNCATED_IMAGES=True turns off)."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = tmp_path / name
    path.write_bytes(REFUSED[name][0]())
    with pytest.raises(PipelineError, match="truncated"):
        read_image(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(PipelineError, match="cannot read image: .*gone.jpg"):
        read_image(tmp_path / "gone.jpg")


def test_truncated_jpeg_stops_training_with_one_error_line(tmp_path):
    folder = make_competition(tmp_path, "c", ext=".jpg")
    image = folder / "train" / "train_005.jpg"
    image.write_bytes(image.read_bytes()[:-100])
    run_here(tmp_path, "01_folds.py", "c", *TINY)
    proc = run_here(tmp_path, "02_train.py", "c", *TINY, check=False)
    assert proc.returncode == 1
    assert_one_line_error(proc, "cannot decode image", "train_005.jpg", "truncated")
    assert not any((tmp_path / "models").rglob("manifest.json"))
