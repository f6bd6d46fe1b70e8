import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata as scipy_rankdata

from micronas.infra.stats import rankdata

pytestmark = pytest.mark.unit


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.integers(-5, 5) | st.floats(-1e6, 1e6, allow_nan=False), max_size=60),
       st.sampled_from(["average", "dense"]))
def test_rankdata_equals_scipy(values, method):
    np.testing.assert_array_equal(rankdata(values, method), scipy_rankdata(values, method=method))


def test_rankdata_refuses_nan_and_unknown_methods():
    with pytest.raises(ValueError, match="NaN"):
        rankdata([1.0, float("nan")])
    with pytest.raises(ValueError, match="method"):
        rankdata([1.0], "min")
