"""Frame helpers that every path relies on."""

from __future__ import annotations

import numpy as np
import pytest

from plateforge.frames import has_non_finite


@pytest.mark.parametrize(
    ("dtype", "value", "expected"),
    [
        pytest.param(np.float16, np.nan, True, id="half-nan"),
        pytest.param(np.float16, -np.inf, True, id="half-neg-inf"),
        pytest.param(np.float16, 65504.0, False, id="half-max"),
        pytest.param(np.float32, np.inf, True, id="float-inf"),
        pytest.param(np.float32, -3.4e38, False, id="float-lowest"),
        pytest.param(np.uint32, 0xFFFFFFFF, False, id="uint-all-ones"),
    ],
)
def test_has_non_finite(dtype: type, value: float, expected: bool) -> None:
    pixels = np.zeros((300, 1000), dtype=dtype)
    pixels[299, 999] = value  # the last sample of the last block
    assert has_non_finite(pixels) is expected
    assert has_non_finite(pixels[:, 999:]) is expected  # a strided view
