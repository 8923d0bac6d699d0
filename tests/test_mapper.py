"""gen/mapper.py and gen/model.py without hardware: random layer/config pairs are mapped with
the model's invariants holding, or rejected naming the limit; the pre-compile estimate agrees
with the compiled layer's exact model."""

import random

import numpy as np
import pytest

from gen.layer import Layer
from gen.mapper import OBJECTIVES, _band_passes, estimate, map_layer, rounds_of
from gen.model import layer_model
from gen.program import layer_image
from rtl.config import AccelConfig

#: Prefixes of the messages a layer that cannot be mapped may give (the limit it exceeds).
LIMITS = ("act_bits:", "weight_bits:", "psum_bits:", "glb_bytes:", "ifmap_spad:",
          "filter_spad:", "output width F=")


def random_config(rng):
    act, weight = rng.choice([4, 8, 16]), rng.choice([4, 8])
    psum = min(64, act + weight + 1 + rng.choice([0, 4, 16]))
    bus = rng.choice([32, 64])              # psums over 32 bits on a 32-bit bus: rejected
    return AccelConfig(rows=rng.randint(1, 6), cols=rng.randint(1, 6), lanes=rng.choice([1, 2, 4]),
                       mac=rng.choice(["serial", "parallel"]), act_bits=act,
                       weight_bits=weight, psum_bits=psum,
                       filter_spad=rng.choice([4, 16, 64]), ifmap_spad=rng.choice([2, 6, 16]),
                       psum_spad=rng.choice([1, 2, 4, 8]),
                       glb_bytes=rng.choice([256, 1024, 4096, 16384]), glb_banks=2,
                       dram_data_bits=bus)


def random_layer(rng):
    R, S = rng.randint(1, 6), rng.randint(1, 6)
    stride, pad = rng.randint(1, 3), rng.randint(0, 2)
    H = rng.randint(max(1, R - 2 * pad), 20)
    W = rng.randint(max(1, S - 2 * pad), 20)
    return Layer(N=rng.randint(1, 3), C=rng.randint(1, 12), H=H, W=W, M=rng.randint(1, 20), R=R,
                 S=S, stride=stride, pad=pad, act_bits=rng.randint(1, 8),
                 weight_bits=rng.randint(2, 8), act_signed=rng.random() < 0.5)


def check_mapping(cfg, layer, mapping, est):
    """Every MAC of the layer is computed exactly once and every output row of every filter is
    in exactly one GLB round; the estimate counts the layer's MACs."""
    assert est.macs == layer.macs
    rounds = rounds_of(layer, mapping)
    out = np.zeros((layer.M, layer.E), dtype=int)
    for r in rounds:
        out[r.m0:r.m0 + r.mg, r.e0:r.e0 + r.eb] += 1
        work = np.zeros((r.mg, layer.C, layer.R, r.eb), dtype=int)
        _, passes = _band_passes(cfg, layer, mapping, r.mg, r.eb)
        for ap in passes:
            job = ap.pe
            assert job.cols == layer.F
            for b in ap.blocks:
                work[b.m0:b.m0 + job.filters, b.c0:b.c0 + job.chans, b.r0:b.r0 + b.height,
                     b.e0:b.e0 + b.width] += 1
        assert (work == 1).all()
    assert (out == 1).all()


@pytest.mark.parametrize("chunk", range(14))
def test_random_layers_map_or_name_the_limit(chunk):
    """2,100 random layer/config pairs (150 per chunk): mapped with the invariants, or a
    ``ValueError`` naming the limit; never any other exception (the closed-form search alone,
    which sees every candidate; the full estimate is tested below)."""
    rng = random.Random(chunk)
    mapped = 0
    for _ in range(150):
        cfg, layer = random_config(rng), random_layer(rng)
        try:
            res = map_layer(cfg, layer, rng.choice(OBJECTIVES), detailed=0)
        except ValueError as e:
            assert str(e).startswith(LIMITS), str(e)
            continue
        mapped += 1
        check_mapping(cfg, layer, res.mapping, res.estimate)
    assert mapped >= 30                  # the generator is not degenerate: most pairs map


@pytest.mark.parametrize("seed", range(12))
def test_estimate_agrees_with_the_compiled_layer(seed):
    """The estimate (data-less compile) has the compiled layer's exact DRAM bytes, GLB and spad
    accesses and MAC work; its cycles leave out only the GLB bank conflicts; the quick estimate
    the mapper searches with has the same accesses but its own program size and pass times."""
    rng = random.Random(100 + seed)
    while True:
        cfg, layer = random_config(rng), random_layer(rng)
        try:
            res = map_layer(cfg, layer)
            break
        except ValueError:
            continue
    x, w, bias = layer.random_arrays(seed, with_bias=True)
    w = np.where(w == 0, 1, w)                   # distinct filter groups never look alike
    image = layer_image(cfg, layer, x, w, bias, mapping=res.mapping)
    exact = layer_model(cfg, image).counters
    est = estimate(cfg, layer, res.mapping)
    assert (est.dram_rd, est.dram_wr) == (exact["dram_rd"], exact["dram_wr"])
    assert est.pe_active == exact["pe_active"]
    assert est.spad == exact["spad_rd"] + exact["spad_wr"]
    assert est.glb == exact["glb_rd"] + exact["glb_wr"]
    assert est.phases["t_program"] == exact["t_program"]
    assert est.phases["t_load"] == exact["t_load"]
    assert est.cycles <= exact["cycles"] <= 1.1 * est.cycles
    quick = estimate(cfg, layer, res.mapping, quick=True)
    assert (quick.dram_wr, quick.pe_active, quick.spad) == (est.dram_wr, est.pe_active, est.spad)
    assert abs(quick.cycles - est.cycles) <= 0.5 * est.cycles


def test_mapping_is_deterministic_and_objectives_differ_only_in_choice():
    from gen.networks import layer as net_layer
    from rtl.config import preset
    cfg = preset("eyeriss")
    lay = net_layer("alexnet.conv2", batch=2, act_bits=16, weight_bits=16)
    a, b = map_layer(cfg, lay), map_layer(cfg, lay)
    assert a.mapping == b.mapping and a.estimate == b.estimate
    energy = map_layer(cfg, lay, "energy")
    assert energy.estimate.total_energy <= a.estimate.total_energy
    assert a.estimate.cycles <= energy.estimate.cycles
    assert "alexnet.conv2" in a.why(cfg) and "candidate" in a.why(cfg)


def test_bad_objective_and_unmappable_layer_name_the_problem():
    from rtl.config import preset
    cfg = preset("tiny")
    layer = Layer(N=1, C=2, H=8, W=8, M=2, R=3, S=3)
    with pytest.raises(ValueError, match=r"objective: must be one of cycles, energy, edp"):
        map_layer(cfg, layer, "speed")
    with pytest.raises(ValueError, match=r"ifmap_spad: filter width S=17 exceeds ifmap_spad=16"):
        map_layer(cfg, Layer(N=1, C=1, H=20, W=20, M=1, R=1, S=17))
    with pytest.raises(ValueError, match=r"psum_bits: a 48-bit psum needs a 64-bit GLB container, "
                                         r"wider than dram_data_bits=32"):
        map_layer(cfg.replace(psum_bits=48), layer)
    with pytest.raises(ValueError, match=r"glb_bytes: one output row of one filter needs \d+"):
        map_layer(cfg.replace(glb_bytes=128), Layer(N=1, C=16, H=40, W=40, M=4, R=3, S=3))
