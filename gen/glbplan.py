"""A layer as the on-chip datapath runs it: the global-buffer image and the per-pass commands.

This is the back half of the compiler: :func:`plan_layer` places filters, input and the psum tile
in the GLB and turns every array pass into the table entries, roles and job values that
:class:`rtl.core.Core` takes. (The program format that carries them from DRAM is built on top.)

GLB layout, in words of ``dram_data_bits``:

* filter words of every pass, each filter key's words in send order (``lanes`` weights of 8 or
  16 bits per filter word, :func:`rtl.sender.filter_word_bits`);
* the input, position-major and channel-minor per row (``H x W x C``, 8- or 16-bit containers);
* the psum tile ``E x F x M`` (filter-minor) in 32- or 64-bit containers, initialised with the
  bias, to which every pass adds its partial sums; the store path reads it in that order, which is
  the next layer's ``H x W x C`` input layout.
"""

from dataclasses import dataclass, field

import numpy as np

from gen.rowstationary import filter_words, plan_conv, role_words

__all__ = ["pack", "PassCommands", "LayerPlan", "plan_layer", "glb_words_needed"]


def pack(values, bits, per_word):
    """Pack integers (two's complement, ``bits`` each, ``per_word`` to a word) into word ints."""
    mask = (1 << bits) - 1
    return [sum((int(v) & mask) << (i * bits) for i, v in enumerate(values[k:k + per_word]))
            for k in range(0, len(values), per_word)]


@dataclass
class PassCommands:
    """What :class:`rtl.core.Core` needs for one pass (dicts in the ports' layouts)."""

    array_pass: object
    sender_table: list = field(default_factory=list)
    roles: list = field(default_factory=list)
    writer_table: list = field(default_factory=list)
    sender_job: dict = None
    writer_job: dict = None


@dataclass
class LayerPlan:
    """GLB image and commands of one layer; ``store`` is the store job without the stage."""

    words: list
    passes: list
    store_src: int
    store_count: int
    input_word: int = 0     # first word of the input
    psum_word: int = 0      # first word of the psum tile


def glb_words_needed(cfg, shape, passes):
    """GLB words of ``shape``'s image with ``passes``: ``(filters, input, psum tile)``."""
    from rtl.buffers import psums_per_word
    from rtl.sender import act_container_bits, filter_word_bits
    bus = cfg.dram_data_bits
    f_per, a_per = bus // filter_word_bits(cfg), bus // act_container_bits(cfg)
    filters = sum(-(-len(ap.tags()[0]) * ap.pe.groups(cfg) * ap.pe.chans * ap.pe.taps // f_per)
                  for ap in passes)
    return (filters, -(-shape.C * shape.H * shape.W // a_per),
            -(-shape.M * shape.E * shape.F // psums_per_word(cfg)))


def plan_layer(cfg, shape, x, w, bias=None, pa=None, act_signed=False, chain=False, chans=None,
               filters=None):
    """Plan ``shape`` (padded input ``x`` (C, H, W), weights ``w`` (M, C, R, S), optional bias)
    with ``chans`` channels and ``filters`` filters per PE (default: the largest that fit).
    With ``x`` None only the layout and the commands are planned (``words`` is None).

    Raises ``ValueError`` naming the limit when the layer's GLB image does not fit ``glb_bytes``.
    """
    from rtl.buffers import psum_container_bits, psums_per_word
    from rtl.sender import act_container_bits, filter_word_bits

    passes = plan_conv(cfg, shape, pa=pa, act_signed=act_signed, chain=chain, chans=chans,
                       filters=filters)
    need = sum(glb_words_needed(cfg, shape, passes))
    if need > cfg.glb_words:
        raise ValueError(f"glb_bytes: the layer needs {need * cfg.dram_bytes} bytes of global "
                         f"buffer (filters, input, psum tile) but glb_bytes={cfg.glb_bytes}")
    bus = cfg.dram_data_bits
    fbits, acont, pc = filter_word_bits(cfg), act_container_bits(cfg), psum_container_bits(cfg)
    wcont = fbits // cfg.lanes
    f_per, a_per, k = bus // fbits, bus // acont, psums_per_word(cfg)

    data = x is not None
    words, cmds, nwords = [], [], 0
    for ap in passes:
        fbase = nwords * f_per
        count = len(ap.tags()[0]) * ap.pe.groups(cfg) * ap.pe.chans * ap.pe.taps
        if data:
            vals = [sum((v & ((1 << wcont) - 1)) << (l * wcont) for l, v in enumerate(lanes))
                    for _, lanes in filter_words(cfg, ap, w)]
            words += pack(vals, fbits, f_per)
        nwords += -(-count // f_per)
        cmds.append((ap, fbase, count))
    input_word = nwords
    ibase = input_word * a_per
    psum_word = input_word + -(-shape.C * shape.H * shape.W // a_per)
    pbase = psum_word * k
    if data:
        words += pack(np.transpose(x, (1, 2, 0)).reshape(-1), acont, a_per)
        b = np.zeros(shape.M, dtype=np.int64) if bias is None else np.asarray(bias)
        words += pack(np.broadcast_to(b, (shape.E, shape.F, shape.M)).reshape(-1), pc, k)
        assert len(words) == need
    else:
        words = None

    plans = []
    for ap, fbase, nwords in cmds:
        ftags, itags = ap.tags()
        per_key = nwords // len(ftags)
        pcmd = PassCommands(ap)
        pcmd.sender_table = (
            [{"ifmap": 0, "index": t, "base": fbase + t * per_key} for t in ftags.values()] +
            [{"ifmap": 1, "index": t, "base": ibase + h * shape.W * shape.C + c0}
             for (c0, h), t in itags.items()])
        pcmd.roles = role_words(cfg, ap)
        tops = ap.tops(cfg)
        pcmd.writer_table = [{"index": i, "accumulate": 1,
                              "base": pbase + (blk.e0 + j) * shape.F * shape.M + blk.m0}
                             for i, (_, _, blk, j) in enumerate(tops)]
        pcmd.sender_job = {"filter_tags": len(ftags), "filter_words": per_key,
                           "ifmap_tags": len(itags), "chans": ap.pe.chans, "taps": ap.pe.taps,
                           "stride": ap.pe.stride, "cols": ap.pe.cols, "pos_stride": shape.C}
        pcmd.writer_job = {"tops": len(tops), "filters": ap.pe.filters, "cols": ap.pe.cols,
                           "col_stride": shape.M}
        plans.append(pcmd)
    return LayerPlan(words=words, passes=plans, store_src=pbase,
                     store_count=shape.M * shape.E * shape.F, input_word=input_word,
                     psum_word=psum_word)
