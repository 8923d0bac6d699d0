"""gen/program.py: GLB rounds of layers larger than the global buffer (pure Python)."""

import numpy as np
import pytest

from gen.glbplan import glb_words_needed
from gen.layer import Layer
from gen.program import _band_shape, plan_rounds
from gen.rowstationary import plan_conv
from rtl.config import preset


@pytest.mark.parametrize("seed", range(40))
def test_rounds_cover_every_output_once_and_fit(seed):
    rng = np.random.default_rng(seed)
    R, S = (int(v) for v in rng.integers(1, 5, 2))
    stride = int(rng.integers(1, 3))
    layer = Layer(N=1, C=int(rng.integers(1, 9)), H=int(rng.integers(R, 24)),
                  W=int(rng.integers(S, 24)), M=int(rng.integers(1, 17)), R=R, S=S,
                  stride=stride, pad=int(rng.integers(0, 2)), act_bits=8)
    cfg = preset("tiny").replace(glb_bytes=int(rng.choice([512, 1024, 2048, 8192])))
    try:
        rounds = plan_rounds(cfg, layer)
    except ValueError as e:
        assert str(e).startswith("glb_bytes: one output row of one filter needs")
        return
    covered = np.zeros((layer.M, layer.E), dtype=int)
    for r in rounds:
        covered[r.m0:r.m0 + r.mg, r.e0:r.e0 + r.eb] += 1
        shape = _band_shape(layer, r.mg, r.eb)
        passes = plan_conv(cfg, shape, pa=8, chain=False)
        assert sum(glb_words_needed(cfg, shape, passes)) <= cfg.glb_words
    assert (covered == 1).all()


def test_layer_that_cannot_fit_names_the_limit():
    cfg = preset("tiny").replace(glb_bytes=128)
    layer = Layer(N=1, C=8, H=12, W=12, M=4, R=3, S=3)
    with pytest.raises(ValueError, match=r"glb_bytes: one output row of one filter needs \d+ "
                                         r"bytes of global buffer .* but glb_bytes=128"):
        plan_rounds(cfg, layer)
