"""Program format of the accelerator, and the DRAM image that runs one layer.

A program is a list of 32-bit little-endian words in DRAM, run by :class:`rtl.control.Controller`.
Each instruction is a header word ``opcode | arg << 8`` followed by its operand words:

========  =======================================================  ======================================
opcode    operands                                                  effect
========  =======================================================  ======================================
LOAD  1   addr_lo, addr_hi, glb_word, row_words | rows << 16,       DMA read of ``rows`` rows of
          stride                                                    ``row_words`` bus words (row starts
                                                                    ``stride`` bytes apart) into GLB words
                                                                    ``glb_word, glb_word + 1, ...``
STORE 2   addr_lo, addr_hi, row_words | rows << 16, stride          the store job through the output
                                                                    stage, written to DRAM likewise
WRITE 3   ``arg = target | count << 8``; ``count`` values of        table entries into the core / job
          ``ceil(bits / 32)`` words each, least significant first   registers (:data:`TARGETS`)
PASS  4   --                                                        one array pass; waits for its end
SYNC  5   --                                                        waits until the GLB is idle
END   6   --                                                        the run ends (status done)
LOADP 7   ``arg = signed``; addr_lo, addr_hi, glb_word, dma_words,  DMA read of a packed segment
          glb_words                                                 (:mod:`gen.packing`) of
                                                                    ``dma_words`` bus words, unpacked
                                                                    into ``glb_words`` GLB words from
                                                                    ``glb_word`` on
STOREP 8  addr_lo, addr_hi, room_words                              the (packed) store job, written
                                                                    from ``addr`` on in as many words
                                                                    as the data needs (at most
                                                                    ``room_words``)
========  =======================================================  ======================================

LOADP and STOREP exist when the config has ``pack_group`` (the precision-packed DRAM format).

Addresses are byte addresses, bus-word aligned. Any other opcode or target, or a STORE whose size
disagrees with its store job, ends the run with an error (:data:`rtl.control.ERRORS`).

DRAM image of a layer (:func:`layer_image`), every region aligned to :data:`ALIGN` bytes: the
program, then per GLB round (:func:`gen.mapper.rounds_of`: a band of output rows for a group of
filters)
its filter words in send order (shared by rounds with the same), its input rows (``H x W x C``,
padded, 8- or 16-bit containers), its bias tile (``E x F x M`` psums, the accumulation's start
value; shared) and its output (``E x F x M`` elements in 8/16-bit containers after an output
stage, 32/64-bit raw accumulators without one).
"""

from dataclasses import dataclass

import numpy as np

from rtl.control import LOAD_OPERANDS, OPCODES, STORE_OPERANDS, STOREP_OPERANDS, write_targets

__all__ = ["OPCODES", "TARGETS", "ALIGN", "Program", "Instruction", "decode", "encode_value",
           "Round", "OutputRegion", "LayerImage", "layer_image", "check_layer_fits",
           "output_container"]

#: WRITE targets in code order.
TARGETS = ("sender_table", "roles", "writer_table", "sender_job", "pass_cfg", "writer_job",
           "store_job")
#: Alignment of the regions of a layer image, in bytes.
ALIGN = 64
_OPERANDS = {"LOAD": LOAD_OPERANDS, "STORE": STORE_OPERANDS, "WRITE": 0, "PASS": 0, "SYNC": 0,
             "END": 0, "LOADP": LOAD_OPERANDS, "STOREP": STOREP_OPERANDS}
_NAMES = {code: name for name, code in OPCODES.items()}


def _words_of(bits):
    return -(-bits // 32)


def encode_value(layout, value):
    """32-bit words of ``value`` (an int or a dict in ``layout``), least significant first."""
    raw = value if isinstance(value, int) else _pack_fields(layout, value)
    return [(raw >> (32 * i)) & 0xFFFF_FFFF for i in range(_layout_words(layout))]


def _layout_words(layout):
    key = ("words", id(layout))
    if key not in _FIELDS:
        _FIELDS[key] = _words_of(layout.size)
        _FIELDS[("keep", id(layout))] = layout
    return _FIELDS[key]


_FIELDS = {}


def _pack_fields(layout, value):
    """``value`` (a dict, nested for struct fields) as the integer ``layout.const(value)`` holds
    (the same bits, without building Amaranth constants: compiling big layers packs millions)."""
    fields = _FIELDS.get(id(layout))
    if fields is None:
        from amaranth.hdl import Shape
        from amaranth.lib import data
        fields = []
        for name, f in layout:
            sub = f.shape if isinstance(f.shape, data.Layout) else None
            fields.append((name, f.offset, Shape.cast(f.shape).width, sub))
        _FIELDS[id(layout)] = fields
        _FIELDS[("keep", id(layout))] = layout        # ids stay valid while cached
    if not isinstance(value, dict):                  # an Amaranth constant already
        return layout.const(value).as_value().value
    raw = 0
    for name, offset, width, sub in fields:
        v = value.get(name, 0)
        if sub is not None and not isinstance(v, int):
            v = _pack_fields(sub, v)
        raw |= (int(v) & ((1 << width) - 1)) << offset
    return raw


@dataclass(frozen=True)
class Instruction:
    """One decoded instruction: ``op`` name, word ``offset`` in the program and its fields."""

    op: str
    offset: int
    fields: dict

    def __str__(self):
        args = ", ".join(f"{k}={v:#x}" if isinstance(v, int) and k.endswith("addr") else
                         f"{k}={v}" for k, v in self.fields.items())
        return f"{self.offset * 4:6x}: {self.op:<5} {args}"


class Program:
    """Builder of the instruction words for ``cfg``; :attr:`words` is the program."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.layouts = {name: layout for name, layout, _ in write_targets(cfg)}
        assert tuple(self.layouts) == TARGETS
        self.words = []

    def _op(self, name, arg=0, operands=()):
        self.words.append(OPCODES[name] | arg << 8)
        self.words.extend(int(w) & 0xFFFF_FFFF for w in operands)

    def _check_block(self, what, addr, row_words, rows, stride):
        bus = self.cfg.dram_bytes
        if addr % bus or stride % bus:
            raise ValueError(f"{what}: address {addr:#x} and stride {stride} must be multiples of "
                             f"the bus width ({bus} bytes)")
        if not (1 <= row_words < 1 << 16 and 1 <= rows < 1 << 16):
            raise ValueError(f"{what}: row_words and rows must be in 1..65535 "
                             f"(got {row_words}, {rows})")

    def load(self, dram_addr, glb_word, row_words, rows=1, stride=0):
        """LOAD ``rows x row_words`` bus words from ``dram_addr`` into GLB word ``glb_word`` on."""
        self._check_block("LOAD", dram_addr, row_words, rows, stride)
        self._op("LOAD", 0, [dram_addr, dram_addr >> 32, glb_word, row_words | rows << 16, stride])

    def store(self, dram_addr, row_words, rows=1, stride=0):
        """STORE the current store job's output words to ``dram_addr``."""
        self._check_block("STORE", dram_addr, row_words, rows, stride)
        self._op("STORE", 0, [dram_addr, dram_addr >> 32, row_words | rows << 16, stride])

    def _check_packed(self, what):
        if not self.cfg.pack_group:
            raise ValueError(f"{what}: the config has no packed DRAM format (pack_group=0)")

    def loadp(self, dram_addr, glb_word, dma_words, glb_words, signed):
        """LOADP: the packed segment of ``dma_words`` bus words at ``dram_addr``, unpacked into
        ``glb_words`` GLB words from ``glb_word`` on (elements signed as ``signed`` says)."""
        self._check_packed("LOADP")
        self._check_block("LOADP", dram_addr, dma_words, 1, 0)
        if glb_words < 1:
            raise ValueError(f"LOADP: glb_words must be at least 1 (got {glb_words})")
        self._op("LOADP", int(bool(signed)), [dram_addr, dram_addr >> 32, glb_word, dma_words,
                                              glb_words])

    def storep(self, dram_addr, room_words):
        """STOREP: the current (packed) store job's words to ``dram_addr``, at most
        ``room_words`` of them."""
        self._check_packed("STOREP")
        self._check_block("STOREP", dram_addr, 1, 1, 0)
        self._op("STOREP", 0, [dram_addr, dram_addr >> 32, room_words])

    def write(self, target, values):
        """WRITE ``values`` (ints or dicts in the target's layout) to ``target``."""
        values = list(values)
        layout = self.layouts[target]
        for k in range(0, len(values), 0xFFFF):
            chunk = values[k:k + 0xFFFF]
            words = [w for v in chunk for w in encode_value(layout, v)]
            self._op("WRITE", TARGETS.index(target) | len(chunk) << 8, words)

    def run_pass(self):
        self._op("PASS")

    def sync(self):
        self._op("SYNC")

    def end(self):
        self._op("END")

    def to_bytes(self):
        return np.asarray(self.words, dtype="<u4").tobytes()


def decode(cfg, words):
    """The instructions of a program (a list of ints); raises ``ValueError`` at a bad word."""
    layouts = {name: layout for name, layout, _ in write_targets(cfg)}
    out, i = [], 0
    while i < len(words):
        head = words[i]
        name = _NAMES.get(head & 0xFF)
        if name is None:
            raise ValueError(f"program word {i}: unknown opcode {head & 0xFF}")
        ops = list(words[i + 1:i + 1 + _OPERANDS[name]])
        if name == "LOAD":
            f = {"dram_addr": ops[0] | ops[1] << 32, "glb_word": ops[2],
                 "row_words": ops[3] & 0xFFFF, "rows": ops[3] >> 16, "stride": ops[4]}
        elif name == "STORE":
            f = {"dram_addr": ops[0] | ops[1] << 32, "row_words": ops[2] & 0xFFFF,
                 "rows": ops[2] >> 16, "stride": ops[3]}
        elif name == "LOADP":
            f = {"dram_addr": ops[0] | ops[1] << 32, "glb_word": ops[2], "dma_words": ops[3],
                 "glb_words": ops[4], "signed": head >> 8 & 1}
        elif name == "STOREP":
            f = {"dram_addr": ops[0] | ops[1] << 32, "room_words": ops[2]}
        elif name == "WRITE":
            code, count = head >> 8 & 0xFF, head >> 16
            if code >= len(TARGETS):
                raise ValueError(f"program word {i}: unknown WRITE target {code}")
            layout = layouts[TARGETS[code]]
            n = _words_of(layout.size)
            raw = words[i + 1:i + 1 + n * count]
            values = [sum(w << (32 * j) for j, w in enumerate(raw[k * n:(k + 1) * n]))
                      for k in range(count)]
            f = {"target": TARGETS[code], "values": values}
            ops = raw
        else:
            f = {}
        out.append(Instruction(name, i, f))
        i += 1 + len(ops)
    return out


def output_container(cfg, stage):
    """Bits per output element in DRAM: 8/16 after an output stage, else the raw psum width."""
    if stage is None:
        return 32 if cfg.psum_bits <= 32 else 64
    return 8 if stage.out_bits <= 8 else 16


def check_layer_fits(cfg, layer, bias_max=0):
    """Raise ``ValueError`` naming the config limit ``layer`` exceeds: its precisions, or the
    accumulator width for its worst case (``bias_max`` is the largest bias magnitude)."""
    if layer.act_bits > cfg.act_bits:
        raise ValueError(f"act_bits: the layer's activations have {layer.act_bits} bits but the "
                         f"config's act_bits={cfg.act_bits}")
    if layer.weight_bits > cfg.weight_bits:
        raise ValueError(f"weight_bits: the layer's weights have {layer.weight_bits} bits but the "
                         f"config's weight_bits={cfg.weight_bits}")
    alo, ahi = layer.act_range
    wlo, whi = layer.weight_range
    worst = layer.C * layer.R * layer.S * max(abs(alo), abs(ahi)) * max(abs(wlo), abs(whi)) + \
        int(bias_max)
    if worst >= 1 << (cfg.psum_bits - 1):
        raise ValueError(f"psum_bits: the worst-case accumulator of this layer (C*R*S="
                         f"{layer.C * layer.R * layer.S} products plus the bias) needs "
                         f"{worst.bit_length() + 1} bits but psum_bits={cfg.psum_bits}")


@dataclass(frozen=True)
class Round:
    """One GLB round of an image: filters ``m0 .. m0+mg-1`` on output rows ``e0 .. e0+eb-1``.

    Its GLB image holds those filters, the input rows the band needs and the ``eb x F x mg``
    psum tile (:func:`gen.glbplan.plan_layer` of the sub-layer)."""

    m0: int
    mg: int
    e0: int
    eb: int


def _band_shape(layer, mg, eb):
    from gen.rowstationary import ConvShape
    return ConvShape(C=layer.C, H=(eb - 1) * layer.stride + layer.R, W=layer.W + 2 * layer.pad,
                     M=mg, R=layer.R, S=layer.S, stride=layer.stride)


@dataclass(frozen=True)
class OutputRegion:
    """Where the output of round ``rnd`` of image ``n`` is in DRAM (``eb x F x mg`` elements);
    ``packed``: in the packed format (:mod:`gen.packing`), ``nbytes`` is then the room (the
    words at full precision) and ``packed_words`` the words the data needs, when known."""

    n: int
    rnd: Round
    addr: int
    nbytes: int
    packed: bool = False
    packed_words: int = None


@dataclass
class LayerImage:
    """DRAM contents that run a layer: ``data`` from byte 0, the program at ``prog_addr``, the
    outputs in ``outputs`` (:class:`OutputRegion`, ``container``-bit elements), ``rounds``, the
    array passes of one image (``passes``, all rounds) and their GLB commands (``commands``,
    :class:`gen.glbplan.PassCommands`), the ``mapping``, and the commands of every pass in
    program order, all images (``executed``; passes that reuse the PEs' filters have
    ``load_filters`` off and send no filter words) and, with data, the padded input band
    (C, H, W) each of them reads (``inputs``; for the timing of dynamic precision)."""

    layer: object
    data: bytes
    prog_addr: int
    program: list
    outputs: list
    container: int
    rounds: list
    passes: list
    commands: list = None
    mapping: object = None
    executed: list = None
    inputs: list = None
    cfg: object = None
    #: DRAM bytes of the input activations the program loads (packed or not), all rounds.
    input_bytes: int = 0

    def read_ranges(self):
        """``(addr, nbytes)`` of every output region, in :attr:`outputs` order."""
        return [(o.addr, o.nbytes) for o in self.outputs]

    def output(self, read):
        """The (N, M, E, F) output tensor, reading DRAM with ``read(addr, nbytes) -> bytes``."""
        layer = self.layer
        dtype = {8: "<i1", 16: "<i2", 32: "<i4", 64: "<i8"}[self.container]
        if layer.output is not None and not layer.output.out_signed:
            dtype = dtype.replace("i", "u")
        y = np.zeros(layer.output_shape, dtype=np.int64)
        for o in self.outputs:
            r = o.rnd
            count = r.eb * layer.F * r.mg
            if o.packed:
                from gen import packing
                bus = self.cfg.dram_data_bits
                words = _words_of_bytes(read(o.addr, o.nbytes), bus)
                raw = packing.unpack(words, count, self.container, self.cfg.pack_group,
                                     dtype.startswith("<i"), bus)
            else:
                raw = np.frombuffer(read(o.addr, o.nbytes), dtype=dtype)[:count].astype(np.int64)
            y[o.n, r.m0:r.m0 + r.mg, r.e0:r.e0 + r.eb] = \
                raw.reshape(r.eb, layer.F, r.mg).transpose(2, 0, 1)
        return y


def filter_signature(ap, m0):
    """What the PEs' filter spads hold after pass ``ap`` of a round whose filters start at
    ``m0``: equal signatures of consecutive passes let the second reuse them."""
    pe = ap.pe
    keys = tuple(sorted((rc, (b.m0 + m0, b.c0, b.r0 + i)) for rc, (b, i, _) in
                        ap.pe_roles().items()))
    return pe.filters, pe.chans, pe.taps, keys


def _reusing_filters(cmd):
    """``cmd`` (a :class:`gen.glbplan.PassCommands`) with the filters already in the PEs."""
    import dataclasses
    ap = cmd.array_pass
    ap = dataclasses.replace(ap, pe=dataclasses.replace(ap.pe, load_filters=False))
    return dataclasses.replace(cmd, array_pass=ap,
                               sender_job={**cmd.sender_job, "filter_tags": 0})


def _psum_tile_words(cfg, plan):
    from rtl.buffers import psums_per_word
    return -(-plan.store_count // psums_per_word(cfg))


def _elements(words, bits, bus, signed):
    """The ``bits``-wide fields of ``bus``-bit word ints, in order."""
    mask, top = (1 << bits) - 1, 1 << (bits - 1)
    vals = [(int(w) >> (i * bits)) & mask for w in words for i in range(bus // bits)]
    return [v - (top << 1) if signed and v & top else v for v in vals]


def _words_of_bytes(data, bits):
    nbytes = bits // 8
    return [int.from_bytes(data[i:i + nbytes], "little") for i in range(0, len(data), nbytes)]


def _to_bytes(words, bits):
    nbytes = bits // 8
    return b"".join(int(w).to_bytes(nbytes, "little") for w in words)


class _Dram:
    """Byte regions of a layer image, each :data:`ALIGN`-aligned, identical contents shared."""

    def __init__(self, start):
        self.end = start
        self.chunks = []
        self.shared = {}

    def place(self, data, share=False):
        if share and data in self.shared:
            return self.shared[data]
        addr = self.end
        self.end = -(-(addr + len(data)) // ALIGN) * ALIGN
        self.chunks.append((addr, data))
        if share:
            self.shared[data] = addr
        return addr


def layer_image(cfg, layer, x=None, w=None, bias=None, mapping=None, objective="cycles",
                pack=None):
    """The :class:`LayerImage` running ``layer`` (:class:`gen.layer.Layer`) on ``x`` (N, C, H, W)
    with weights ``w`` (M, C, R, S) and optional ``bias`` (M,), with ``mapping``
    (:class:`gen.mapper.Mapping`; by default the mapper's best for ``objective``). With ``x``
    and ``w`` None the image has the program and layout but zero data (for the model).

    Per image and GLB round (or per round and image, as the mapping's ``order`` says) the
    program loads the round's filters (skipped when the previous round had the same filter group
    in the same layout), input rows
    and bias tile, runs every array pass and stores the output tile through the output stage.
    Table entries and job values are written only when they differ from what the core already
    holds (tables and job registers persist); a pass whose PEs hold the same filters as after
    the previous pass skips loading them (``load_filters`` off, no filter words sent). Raises
    ``ValueError`` naming the limit when the layer does not fit ``cfg`` (precisions, accumulator
    width, scratchpads, array, GLB).

    With ``pack`` (configs with ``pack_group``; needs the data; by default on when both are
    there) every round's input rows are
    stored in the packed format (:mod:`gen.packing`) and loaded with LOADP, and the outputs of
    an output stage (8/16-bit) are stored packed with STOREP into regions with room for full
    precision (raw 32/64-bit accumulators stay unpacked); the image then knows each output's
    packed size from the golden convolution (:attr:`OutputRegion.packed_words`, for the model).
    """
    from gen.glbplan import plan_layer
    from gen.golden import pad_input
    from gen.mapper import map_layer, rounds_of
    from gen import packing
    from rtl.outstage import outstage_config_value
    from rtl.sender import act_container_bits
    from rtl.store import OUT_CONTAINERS

    data = x is not None
    if pack is None:
        pack = bool(cfg.pack_group) and data
    if pack and not cfg.pack_group:
        raise ValueError("pack: the config has no packed DRAM format (pack_group=0)")
    if pack and not data:
        raise ValueError("pack: a packed image needs the layer's data (sizes follow the values)")
    if data:
        layer.check_arrays(x, w, bias)
    check_layer_fits(cfg, layer, 0 if bias is None else np.abs(np.asarray(bias)).max(initial=0))
    if mapping is None:
        mapping = map_layer(cfg, layer, objective).mapping
    xp = pad_input(np.asarray(x, dtype=np.int64), layer.pad) if data else None
    w = np.asarray(w, dtype=np.int64) if data else None
    b = np.zeros(layer.M, dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64)
    rounds = rounds_of(layer, mapping)
    bus, nb = cfg.dram_data_bits, cfg.dram_bytes
    acont = act_container_bits(cfg)
    container = output_container(cfg, layer.output)
    stage = outstage_config_value(cfg, layer.output)
    pack_out = pack and container <= 16
    out_signed = layer.output is None or layer.output.out_signed
    if pack_out:                                  # the packed sizes of the outputs, per image
        from gen.golden import conv2d, output_stage
        y_all = output_stage(conv2d(x, w, bias, layer.stride, layer.pad), layer.output)

    plans = {}                                    # (n, round) -> plan
    plan_h = {r: _band_shape(layer, r.mg, r.eb).H for r in rounds}
    for n in range(layer.N):
        for r in rounds:
            h0 = r.e0 * layer.stride
            shape = _band_shape(layer, r.mg, r.eb)
            if not data and n > 0:                # without data the images look alike
                plans[(n, r)] = plans[(0, r)]
                continue
            plans[(n, r)] = plan_layer(
                cfg, shape, xp[n, :, h0:h0 + shape.H] if data else None,
                w[r.m0:r.m0 + r.mg] if data else None, b[r.m0:r.m0 + r.mg],
                pa=layer.act_bits, act_signed=layer.act_signed,
                chans=min(mapping.chans, layer.C), filters=min(mapping.filters, r.mg),
                chain=mapping.chain)
    order = [(n, r) for n in range(layer.N) for r in rounds] if mapping.order == "images" else \
        [(n, r) for r in rounds for n in range(layer.N)]
    work = [(n, r, plans[(n, r)]) for n, r in order]

    executed = []                                 # the passes as run, all images
    inputs = []                                   # the input band each of them reads

    def build(prog_size):
        dram = _Dram(prog_size)
        prog = Program(cfg)
        outputs, loaded = [], None
        read_inputs = [0]
        executed.clear()
        inputs.clear()
        state = {"filters": None}
        written = {}                   # what the core's tables and job registers hold

        def write(target, values, key=None):
            """WRITE only the entries (or the job value) that differ from what is held."""
            held = written.setdefault(target, {})
            keyed = [((key(v) if key else None), v) for v in values]
            changed = [v for k, v in keyed if held.get(k, ...) != v]
            held.update(keyed)
            if changed:
                prog.write(target, changed)
        for n, r, plan in work:
            psum_words = _psum_tile_words(cfg, plan)
            if data:
                filters = _to_bytes(plan.words[:plan.input_word], bus)
                inp = _to_bytes(plan.words[plan.input_word:plan.psum_word], bus)
                tile = _to_bytes(plan.words[plan.psum_word:], bus)
            else:                                  # sizes only
                filters = bytes(plan.input_word * nb)
                inp = bytes((plan.psum_word - plan.input_word) * nb)
                tile = bytes(psum_words * nb)
            # the filters in the GLB are reused when the round has the same filter group in the
            # same layout (decided by structure, not data, so traffic never depends on values)
            fkey = (r.m0, tuple((c.array_pass.pe, tuple(c.array_pass.tags()[0]))
                                for c in plan.passes))
            if filters and fkey != loaded:
                prog.load(dram.place(filters, share=data), 0, plan.input_word)
                loaded = fkey
            if pack:
                in_words = plan.psum_word - plan.input_word
                vals = _elements(plan.words[plan.input_word:plan.psum_word], acont, bus,
                                 layer.act_signed)
                packed = packing.pack(vals, acont, cfg.pack_group, layer.act_signed, bus)
                prog.loadp(dram.place(_to_bytes(packed, bus)), plan.input_word, len(packed),
                           in_words, layer.act_signed)
                read_inputs[0] += len(packed) * nb
            else:
                prog.load(dram.place(inp), plan.input_word, len(inp) // nb)
                read_inputs[0] += len(inp)
            prog.load(dram.place(tile, share=True), plan.psum_word, len(tile) // nb)
            prog.sync()
            for cmd in plan.passes:
                # the PEs still hold this pass's filters when the previous pass had the same
                sig = filter_signature(cmd.array_pass, r.m0)
                reuse = sig == state["filters"]
                state["filters"] = sig
                if reuse:
                    cmd = _reusing_filters(cmd)
                executed.append(cmd)
                inputs.append(xp[n, :, r.e0 * layer.stride:][:, :plan_h[r]] if data else None)
                write("sender_table", cmd.sender_table, key=lambda v: (v["ifmap"], v["index"]))
                write("roles", cmd.roles, key=lambda v: v["index"])
                write("writer_table", cmd.writer_table, key=lambda v: v["index"])
                write("sender_job", [cmd.sender_job])
                write("pass_cfg", [cmd.array_pass.pe.const(cfg).as_value().value])
                write("writer_job", [cmd.writer_job])
                prog.run_pass()
            prog.sync()
            write("store_job", [{"src": plan.store_src, "count": plan.store_count,
                                 "container": OUT_CONTAINERS.index(container), "stage": stage,
                                 "pack": pack_out, "pack_signed": pack_out and out_signed}])
            if pack_out:
                room = packing.worst_case_words(plan.store_count, container, cfg.pack_group, bus)
                addr = dram.place(bytes(room * nb))
                prog.storep(addr, room)
                tile = y_all[n, r.m0:r.m0 + r.mg, r.e0:r.e0 + r.eb].transpose(1, 2, 0)
                outputs.append(OutputRegion(n, r, addr, room * nb, packed=True,
                                            packed_words=packing.packed_words(
                                                tile.reshape(-1), container, cfg.pack_group,
                                                out_signed, bus)))
            else:
                out_words = -(-plan.store_count * container // bus)
                addr = dram.place(bytes(out_words * nb))
                prog.store(addr, out_words)
                outputs.append(OutputRegion(n, r, addr, out_words * nb))
        prog.end()
        return prog, dram, outputs, read_inputs[0]

    prog = build(0)[0]
    prog, dram, outputs, input_bytes = build(-(-len(prog.words) * 4 // ALIGN) * ALIGN)
    data = bytearray(dram.end)
    code = prog.to_bytes()
    data[:len(code)] = code
    for addr, chunk in dram.chunks:
        data[addr:addr + len(chunk)] = chunk
    commands = [cmd for r in rounds for cmd in plans[(0, r)].passes]
    return LayerImage(layer=layer, data=bytes(data), prog_addr=0, program=prog.words,
                      outputs=outputs, container=container, rounds=rounds,
                      passes=[cmd.array_pass for cmd in commands], commands=commands,
                      mapping=mapping, executed=list(executed),
                      inputs=list(inputs) if data else None, cfg=cfg,
                      input_bytes=input_bytes)
