"""The trained digits CNN (gen/digits.py): training and quantisation, then its layers one after
another on the generated Verilog with dynamic precision, each output bit-exact against the
NumPy integer model and the classes identical."""

import numpy as np
import pytest

from gen.digits import digits_cnn, quantise_input
from gen.model import exact_counters, layer_model
from gen.program import layer_image
from gen.runlayer import SimJob, simulate
from rtl.config import preset
from rtl.mac import significant_bits


def test_network_trains_and_quantises():
    net = digits_cnn()
    assert net.float_accuracy >= 0.9
    assert net.int_accuracy >= net.float_accuracy - 0.03
    assert [(l.C, l.M, l.E) for l in net.layer_shapes] == [(1, 8, 8), (8, 16, 4), (16, 10, 1)]
    for w, b in zip(net.weights, net.biases):
        assert np.abs(w).max() <= 127 and np.abs(b).max() < 1 << 31
    acts = net.forward(net.test_x[:64])
    # real activations: ReLU zeros and values well under 8 bits on average
    for a in acts[1:3]:
        assert 0.1 < (a == 0).mean() < 0.9 and 0 <= a.min() and a.max() <= 255
        assert significant_bits(a, 8, False).mean() < 6
    np.testing.assert_array_equal(net.classify(net.test_x[:64]),
                                  acts[-1].reshape(64, -1).argmax(1))


def test_quantise_input_range():
    x = quantise_input(np.array([[[0.0, 16.0], [8.0, 0.4]]]))
    np.testing.assert_array_equal(x, [[[[0, 255], [128, 6]]]])


@pytest.mark.parametrize("sim", ["verilator"])
def test_cnn_layer_by_layer_on_generated_verilog(sim):
    """A batch of test digits through conv1, conv2 and the classifier on ``tiny`` with dynamic
    precision, each layer's input being the previous layer's output read back from the
    simulated DRAM: every output equals the integer model, the access counters equal the
    model's and the predicted classes are the model's."""
    cfg = preset("tiny").replace(dynamic_precision=True)
    net = digits_cnn()
    x = net.test_x[:6]
    golden = net.forward(x)
    act = x
    for k, (layer, w, b) in enumerate(zip(net.layers(len(x)), net.weights, net.biases)):
        image = layer_image(cfg, layer, act, w, b)
        job = SimJob(layer.name, image.data, image.prog_addr, read=image.read_ranges(),
                     max_cycles=2_000_000)
        result, = simulate(cfg, [job], sim=sim)
        assert result["status"] == 0b010, result
        regions = dict(zip((a for a, _ in image.read_ranges()), result["read"]))
        act = image.output(lambda addr, n: regions[addr][:n])
        np.testing.assert_array_equal(act, golden[k + 1], err_msg=layer.name)
        model = exact_counters(cfg, image)
        assert {key: result["counters"][key] for key in model} == model, layer.name
        cycles = layer_model(cfg, image).counters["cycles"]
        assert abs(cycles - result["counters"]["cycles"]) <= 0.03 * cycles, layer.name
    np.testing.assert_array_equal(act.reshape(len(x), -1).argmax(1), net.classify(x))
