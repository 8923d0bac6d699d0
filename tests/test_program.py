"""gen/program.py and gen/mapper.py: GLB rounds of layers larger than the global buffer (pure
Python)."""

import numpy as np
import pytest

from gen.glbplan import glb_words_needed
from gen.layer import Layer
from gen.mapper import map_layer, rounds_of
from gen.program import _band_shape
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
        mapping = map_layer(cfg, layer).mapping
    except ValueError as e:
        assert str(e).startswith("glb_bytes: one output row of one filter needs")
        return
    covered = np.zeros((layer.M, layer.E), dtype=int)
    for r in rounds_of(layer, mapping):
        covered[r.m0:r.m0 + r.mg, r.e0:r.e0 + r.eb] += 1
        shape = _band_shape(layer, r.mg, r.eb)
        passes = plan_conv(cfg, shape, pa=8, chain=mapping.chain, chans=mapping.chans,
                           filters=min(mapping.filters, r.mg))
        assert sum(glb_words_needed(cfg, shape, passes)) <= cfg.glb_words
    assert (covered == 1).all()


def test_layer_that_cannot_fit_names_the_limit():
    cfg = preset("tiny").replace(glb_bytes=128)
    layer = Layer(N=1, C=8, H=12, W=12, M=4, R=3, S=3)
    with pytest.raises(ValueError, match=r"glb_bytes: one output row of one filter needs \d+ "
                                         r"bytes of global buffer .* but glb_bytes=128"):
        map_layer(cfg, layer)


@pytest.mark.parametrize("name", ["tiny", "default", "eyeriss"])
def test_fast_field_packing_equals_amaranth_const(name):
    """The compiler packs WRITE values without Amaranth constants; the bits must be the same."""
    import random

    from amaranth.hdl import Shape
    from amaranth.lib import data

    from gen.program import Program, _pack_fields

    rng = random.Random(7)

    def random_value(layout):
        out = {}
        for field_name, f in layout:
            if isinstance(f.shape, data.Layout):
                out[field_name] = random_value(f.shape)
            else:
                sh = Shape.cast(f.shape)
                lo = -(1 << (sh.width - 1)) if sh.signed else 0
                out[field_name] = rng.randrange(lo, max(lo + 1, 1 << (sh.width - sh.signed)))
        return out

    checked = 0
    for layout in Program(preset(name)).layouts.values():
        if not isinstance(layout, data.StructLayout):
            continue
        for _ in range(50):
            value = random_value(layout)
            assert _pack_fields(layout, value) == layout.const(value).as_value().value, value
            checked += 1
    assert checked >= 250
