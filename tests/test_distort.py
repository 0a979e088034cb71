"""The 25 KADID distortion types: registry, shapes, determinism, strength over levels, odd arrays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import color, data

from curate.distort import (
    DISTORTIONS,
    LEVELS,
    NON_MONOTONIC_TYPES,
    check_image,
    distort,
    distortion_rng,
    filters,
    get_distortion,
)

# Types whose output depends on the random generator (the others are deterministic by construction).
RANDOM_TYPES = (3, 5, 11, 12, 13, 14, 15, 19, 20, 23)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 192 x 144 crop of a real photo (shipped with scikit-image)."""
    big = Image.fromarray(data.astronaut()).resize((192, 192), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(big)[24:168])


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIE76 colour difference between two uint8 RGB images."""
    return float(np.linalg.norm(color.rgb2lab(a) - color.rgb2lab(b), axis=2).mean())


# Types that place patches or blocks at random: one draw can by chance land a strong level on
# flat, similar-coloured ground, so their strength is averaged over a few seeds.
RANDOM_PLACEMENT_TYPES = (20, 23)


@pytest.fixture(scope="module")
def strengths(photo: np.ndarray) -> dict[int, list[float]]:
    """Mean CIE76 colour difference to the reference of every type at levels 1-5 (computed once)."""
    result = {}
    for t, d in DISTORTIONS.items():
        seeds = range(4) if t in RANDOM_PLACEMENT_TYPES else (7,)
        result[t] = [
            float(np.mean([delta_e(photo, d(photo, lv, distortion_rng(s, "photo", t, lv))) for s in seeds]))
            for lv in LEVELS
        ]
    return result


def test_registry_numbers_names_and_values() -> None:
    assert sorted(DISTORTIONS) == list(range(1, 26))
    assert len({d.name for d in DISTORTIONS.values()}) == 25
    for number, d in DISTORTIONS.items():
        assert d.number == number and len(d.values) == 5
        assert get_distortion(number) is d and get_distortion(str(number)) is d and get_distortion(d.name) is d
    # A few of the generator's per-level values.
    assert DISTORTIONS[1].values == (0.1, 0.5, 1, 2, 5)
    assert DISTORTIONS[6].values == (64, 48, 32, 16, 8)
    assert DISTORTIONS[10].values == (43, 36, 24, 7, 4)
    assert DISTORTIONS[15].values == (0.01, 0.03, 0.05, 0.1, 0.15)
    assert get_distortion("JPEG").number == 10 and get_distortion("color-quantization").number == 6
    with pytest.raises(KeyError, match="1-25"):
        get_distortion(26)
    with pytest.raises(KeyError, match="no KADID distortion named"):
        get_distortion("blurry")


@pytest.mark.parametrize("number", sorted(DISTORTIONS))
def test_shape_dtype_and_input_untouched(number: int, photo: np.ndarray) -> None:
    before = photo.copy()
    for level in LEVELS:
        out = DISTORTIONS[number](photo, level, distortion_rng(0, "photo", number, level))
        assert out.shape == photo.shape and out.dtype == np.uint8
        assert out is not photo
    np.testing.assert_array_equal(photo, before)


@pytest.mark.parametrize("number", sorted(DISTORTIONS))
def test_odd_and_tiny_sizes(number: int, photo: np.ndarray) -> None:
    for h, w in ((9, 17), (1, 1), (33, 21)):
        image = np.ascontiguousarray(photo[:h, :w])
        for level in LEVELS:
            out = DISTORTIONS[number](image, level, distortion_rng(0, "tiny", number, level))
            assert out.shape == (h, w, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("number", sorted(DISTORTIONS))
def test_deterministic_for_a_seed(number: int, photo: np.ndarray) -> None:
    first = DISTORTIONS[number](photo, 4, distortion_rng(3, "photo", number, 4))
    again = DISTORTIONS[number](photo, 4, distortion_rng(3, "photo", number, 4))
    np.testing.assert_array_equal(first, again)
    other = DISTORTIONS[number](photo, 4, distortion_rng(4, "photo", number, 4))
    if number in RANDOM_TYPES:
        assert not np.array_equal(first, other), "a random type must depend on its generator"
    else:
        np.testing.assert_array_equal(first, other)


@pytest.mark.parametrize("number", [t for t in sorted(DISTORTIONS) if t not in NON_MONOTONIC_TYPES])
def test_strength_increases_with_level(number: int, strengths: dict[int, list[float]]) -> None:
    d = strengths[number]
    assert all(b > a for a, b in zip(d, d[1:], strict=False)), f"{DISTORTIONS[number].name}: {d}"


def test_kadid_levels_of_mean_shift_and_contrast_change_are_v_shaped(strengths: dict[int, list[float]]) -> None:
    """KADID orders these by parameter (+ to -), not strength: the distance dips at level 3."""
    shift = strengths[18]  # +0.15, +0.08, 0, -0.08, -0.15
    assert shift[0] > shift[1] > shift[2] < shift[3] < shift[4]
    assert shift[2] == 0.0  # a shift of 0 leaves a full-range image untouched
    contrast = strengths[25]  # +0.3, +0.15, 0, -0.4, -0.6 (0 still bends the curve slightly)
    assert contrast[0] > contrast[1] > contrast[2]
    assert contrast[3] < contrast[4]
    assert min(contrast) in (contrast[2], contrast[3])


def test_rng_derivation_depends_on_every_part() -> None:
    base = distortion_rng(1, "I01", 3, 2).random(4)
    np.testing.assert_array_equal(base, distortion_rng(1, "I01", 3, 2).random(4))
    for other in (distortion_rng(2, "I01", 3, 2), distortion_rng(1, "I02", 3, 2),
                  distortion_rng(1, "I01", 4, 2), distortion_rng(1, "I01", 3, 3)):
        assert not np.array_equal(base, other.random(4))


def test_bad_arrays_are_refused(photo: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="uint8"):
        distort(photo.astype(np.float32), 1, 1, rng)
    with pytest.raises(ValueError, match="H x W x 3"):
        distort(photo[..., 0].copy(), 1, 1, rng)
    with pytest.raises(ValueError, match="H x W x 3"):
        distort(np.dstack([photo, photo[..., :1]]), 1, 1, rng)
    with pytest.raises(ValueError, match="level"):
        distort(photo, 1, 6, rng)
    with pytest.raises(ValueError, match="above the limit"):
        distort(photo, "jpeg", 3, rng, max_pixels=100)
    check_image(photo)  # the photo itself is fine


def test_filters_kernels_sum_to_one_and_identity_cases() -> None:
    for radius in (1, 2, 4, 6, 8):
        k = filters.disk_kernel(radius)
        assert k.shape == (2 * int(np.ceil(radius - 0.5)) + 1,) * 2 and abs(k.sum() - 1) < 1e-12
    for length in (1, 2, 4, 6, 10):
        for angle in (0.0, 33.0, 90.0, 145.0):
            k = filters.motion_kernel(length, angle)
            assert abs(k.sum() - 1) < 1e-12 and k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
    np.testing.assert_array_equal(filters.motion_kernel(1, 20.0), np.ones((1, 1)))
    # A horizontal motion of 5 pixels spreads along one row only.
    k = filters.motion_kernel(5, 0.0)
    assert k.shape[0] == 1 and k.shape[1] >= 5


def test_otsu_thresholds_split_separated_modes() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(m, 0.02, 2000) for m in (0.1, 0.5, 0.9)]).clip(0, 1)
    cuts = filters.otsu_thresholds(values, 2)
    assert 0.15 < cuts[0] < 0.45 and 0.55 < cuts[1] < 0.85


def test_quantization_posterises_to_few_values(photo: np.ndarray) -> None:
    out = DISTORTIONS[22](photo, 5, np.random.default_rng(0))  # 7 thresholds -> 8 values per channel
    assert len(np.unique(out)) <= 8


def test_color_quantization_limits_palette(photo: np.ndarray) -> None:
    out = DISTORTIONS[6](photo, 5, np.random.default_rng(0))  # 8 colours
    assert len(np.unique(out.reshape(-1, 3), axis=0)) <= 8


def test_mean_shift_and_saturation_endpoints(photo: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    grey = DISTORTIONS[7](photo, 4, rng)  # HSV saturation x 0 -> every pixel grey
    assert np.abs(grey.astype(int) - grey[..., :1].astype(int)).max() <= 1
    np.testing.assert_array_equal(DISTORTIONS[8](photo, 1, rng), photo)  # Lab chroma x 1
