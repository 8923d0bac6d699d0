"""Tests of gen/networks.py: layer shapes and MAC counts against the published figures."""

import pytest

from gen.networks import NETWORKS, describe, layer, network

# MACs per image of AlexNet CONV1-5 as tabulated for Eyeriss (JSSC 2017).
ALEXNET_MACS = [105_415_200, 223_948_800, 149_520_384, 112_140_288, 74_760_192]


def test_alexnet_matches_eyeriss_table():
    layers = network("alexnet")
    assert [lay.macs for lay in layers] == ALEXNET_MACS
    assert [(lay.E, lay.M) for lay in layers] == [(55, 96), (27, 256), (13, 384), (13, 384),
                                                   (13, 256)]


@pytest.mark.parametrize("name,published,tol", [
    ("vgg16", 15.35e9, 0.005),          # 15.5 GMAC with the FC layers' 0.12 G
    ("resnet18", 1.814e9, 0.005),       # 1.82 GMAC including the 0.5 M FC layer
    ("mobilenet_v1", 0.569e9 - 17.3e6 - 1.0e6, 0.01),   # 569 M minus depthwise and FC
    ("lenet5", 416_520, 0),
])
def test_total_macs_match_published(name, published, tol):
    total = sum(lay.macs for lay in network(name))
    assert abs(total - published) <= tol * published


def test_final_feature_map_sizes():
    assert network("resnet18")[-1].E == 7
    assert network("vgg16")[-1].E == 14
    last = network("mobilenet_v1")[-1]
    assert (last.E, last.M) == (7, 1024)
    assert network("lenet5")[-1].is_fc


def test_batch_and_precision_applied():
    lay = layer("alexnet.conv3", batch=4, act_bits=16, weight_bits=16)
    assert (lay.N, lay.act_bits, lay.weight_bits) == (4, 16, 16)
    assert lay.macs == 4 * ALEXNET_MACS[2]


def test_unknown_names():
    with pytest.raises(ValueError, match="network: unknown network 'lenet6'"):
        network("lenet6")
    with pytest.raises(ValueError, match="layer: unknown layer 'alexnet.conv9'"):
        layer("alexnet.conv9")


def test_describe_lists_every_network():
    text = describe()
    for name in NETWORKS:
        assert name in text
    assert "total: 5 layers, 665,784,864 MACs per image" in describe("alexnet")
