"""Convolution layer shapes of standard published networks as :class:`gen.layer.Layer` lists."""

import dataclasses

from gen.layer import Layer

__all__ = ["NETWORKS", "network", "layer", "describe"]


def _conv(name, C, H, M, R, stride=1, pad=0):
    """A square layer at batch 1 (networks below use square inputs and filters throughout)."""
    return Layer(N=1, C=C, H=H, W=H, M=M, R=R, S=R, stride=stride, pad=pad, name=name)


def _alexnet():
    """AlexNet CONV1-5 with the shapes of the Eyeriss paper (JSSC 2017, Table on AlexNet).

    CONV2, CONV4 and CONV5 are grouped convolutions (2 groups) in the original network. As in
    Eyeriss they are given here as one layer with the per-group channel count ``C`` (48, 192, 192)
    and all ``M`` filters of both groups: the shape a PE array sees and the MAC count of the grouped
    layer (CONV1 105.4M, CONV2 223.9M, CONV3 149.5M, CONV4 112.1M, CONV5 74.8M per image). As a
    dense convolution it is not numerically the grouped one (every filter reads channels 0..C-1).
    Max-pooling after CONV1, CONV2 and CONV5 sets the next input sizes (55 -> 27, 27 -> 13).
    """
    return [
        _conv("alexnet.conv1", C=3, H=227, M=96, R=11, stride=4),
        _conv("alexnet.conv2", C=48, H=27, M=256, R=5, pad=2),
        _conv("alexnet.conv3", C=256, H=13, M=384, R=3, pad=1),
        _conv("alexnet.conv4", C=192, H=13, M=384, R=3, pad=1),
        _conv("alexnet.conv5", C=192, H=13, M=256, R=3, pad=1),
    ]


def _vgg16():
    """VGG-16 (configuration D): 13 3x3 convolutions, stride 1, pad 1, on a 224x224 input.

    Names follow the paper's blocks (``conv<block>_<index>``); 2x2 max-pooling halves the size
    between blocks. The three FC layers are not included.
    """
    blocks = [(224, [3, 64, 64]), (112, [64, 128, 128]), (56, [128, 256, 256, 256]),
              (28, [256, 512, 512, 512]), (14, [512, 512, 512, 512])]
    return [_conv(f"vgg16.conv{b + 1}_{i + 1}", C=chans[i], H=size, M=chans[i + 1], R=3, pad=1)
            for b, (size, chans) in enumerate(blocks) for i in range(len(chans) - 1)]


def _resnet18():
    """ResNet-18 on a 224x224 input: all 20 convolutions, including the three 1x1 stride-2 shortcut
    (``downsample``) convolutions; names follow torchvision (``layer2.0.conv1`` ...).

    CONV1 is 7x7 stride 2 pad 3 (224 -> 112), then 3x3 stride-2 max-pooling (112 -> 56). The first
    block of layer2..layer4 halves the size with its stride-2 ``conv1`` and ``downsample``. The final
    FC layer is not included.
    """
    layers = [_conv("resnet18.conv1", C=3, H=224, M=64, R=7, stride=2, pad=3)]
    size, chans = 56, 64
    for stage, width in enumerate([64, 128, 256, 512], start=1):
        for block in range(2):
            prefix = f"resnet18.layer{stage}.{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            out = (size + 2 - 3) // stride + 1
            layers.append(_conv(f"{prefix}.conv1", C=chans, H=size, M=width, R=3, stride=stride,
                                pad=1))
            layers.append(_conv(f"{prefix}.conv2", C=width, H=out, M=width, R=3, pad=1))
            if stride != 1 or chans != width:
                layers.append(_conv(f"{prefix}.downsample", C=chans, H=size, M=width, R=1,
                                    stride=stride))
            size, chans = out, width
    return layers


def _mobilenet_v1():
    """MobileNet-v1 (width 1.0, 224x224 input): the standard 3x3 stride-2 CONV1 and the 13
    pointwise (1x1) convolutions; names follow Keras (``conv1``, ``conv_pw_<i>``).

    The 13 depthwise 3x3 convolutions (``conv_dw_<i>``, stride 2 before pointwise layers 2, 4, 6
    and 12) are omitted for now: a depthwise layer is ``C`` independent single-channel convolutions
    and is not a :class:`Layer`. Their strides set the pointwise input sizes below. CONV1 uses
    symmetric pad 1 (the TensorFlow original pads asymmetrically; the output size, 112, is the same).
    """
    layers = [_conv("mobilenet_v1.conv1", C=3, H=224, M=32, R=3, stride=2, pad=1)]
    # (depthwise stride, pointwise output channels) for blocks 1..13.
    blocks = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
              (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024)]
    size, chans = 112, 32
    for i, (dw_stride, width) in enumerate(blocks, start=1):
        size = (size + 2 - 3) // dw_stride + 1
        layers.append(_conv(f"mobilenet_v1.conv_pw_{i}", C=chans, H=size, M=width, R=1))
        chans = width
    return layers


def _lenet5():
    """LeNet-5 (LeCun et al. 1998) on a 32x32 input: convolutions C1, C3, C5 and the FC layers F6
    and the 10-way output, as 1x1 convolutions.

    C3 is fully connected across its 6 input maps (the paper's sparse connection table is not
    modelled), and the output layer is an ordinary FC layer in place of the paper's RBF units.
    2x2 subsampling (S2, S4) sets the next input sizes (28 -> 14, 10 -> 5).
    """
    return [
        _conv("lenet5.c1", C=1, H=32, M=6, R=5),
        _conv("lenet5.c3", C=6, H=14, M=16, R=5),
        _conv("lenet5.c5", C=16, H=5, M=120, R=5),
        Layer.fc(1, 120, 84, name="lenet5.f6"),
        Layer.fc(1, 84, 10, name="lenet5.output"),
    ]


#: Network name -> its layers at batch 1, 8-bit unsigned activations, 8-bit weights, raw outputs.
NETWORKS = {
    "alexnet": tuple(_alexnet()),
    "vgg16": tuple(_vgg16()),
    "resnet18": tuple(_resnet18()),
    "mobilenet_v1": tuple(_mobilenet_v1()),
    "lenet5": tuple(_lenet5()),
}


def network(name, batch=1, act_bits=8, weight_bits=8):
    """The layers of network ``name`` with batch size and precisions applied.

    ``ValueError`` listing the known names for an unknown ``name``.
    """
    try:
        layers = NETWORKS[name]
    except KeyError:
        raise ValueError(f"network: unknown network {name!r} "
                         f"(known: {', '.join(NETWORKS)})") from None
    return [dataclasses.replace(lay, N=batch, act_bits=act_bits, weight_bits=weight_bits)
            for lay in layers]


def layer(qualified, batch=1, act_bits=8, weight_bits=8):
    """One layer by its full name, e.g. ``"alexnet.conv1"`` (see :func:`network`)."""
    net = qualified.split(".", 1)[0]
    for lay in network(net, batch, act_bits, weight_bits):
        if lay.name == qualified:
            return lay
    known = ", ".join(lay.name for lay in NETWORKS[net])
    raise ValueError(f"layer: unknown layer {qualified!r} (known: {known})")


def describe(name=None):
    """A text listing: every network with its layer and MAC counts, or one network layer by layer."""
    if name is None:
        lines = [f"{net:<14} {len(layers):>3} layers {sum(lay.macs for lay in layers):>16,} MACs"
                 for net, layers in NETWORKS.items()]
        return "\n".join(lines)
    layers = network(name)
    lines = [lay.summary() for lay in layers]
    lines.append(f"total: {len(layers)} layers, {sum(lay.macs for lay in layers):,} MACs per image")
    return "\n".join(lines)
