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
========  =======================================================  ======================================

Addresses are byte addresses, bus-word aligned. Any other opcode or target, or a STORE whose size
disagrees with its store job, ends the run with an error (:data:`rtl.control.ERRORS`).

DRAM image of a layer (:func:`layer_image`), every region aligned to :data:`ALIGN` bytes: the
program; the filter words of every pass (in send order); per image the input (``H x W x C``,
padded, in 8- or 16-bit containers); the bias tile (``E x F x M`` psums, loaded into the GLB as
the start value of the accumulation); per image the output (``E x F x M`` elements in 8/16-bit
containers after an output stage, 32/64-bit raw accumulators without one).
"""

from dataclasses import dataclass

import numpy as np

from rtl.control import LOAD_OPERANDS, OPCODES, STORE_OPERANDS, write_targets

__all__ = ["OPCODES", "TARGETS", "ALIGN", "Program", "Instruction", "decode", "encode_value",
           "LayerImage", "layer_image", "check_layer_fits", "output_container"]

#: WRITE targets in code order.
TARGETS = ("sender_table", "roles", "writer_table", "sender_job", "pass_cfg", "writer_job",
           "store_job")
#: Alignment of the regions of a layer image, in bytes.
ALIGN = 64
_OPERANDS = {"LOAD": LOAD_OPERANDS, "STORE": STORE_OPERANDS, "WRITE": 0, "PASS": 0, "SYNC": 0,
             "END": 0}
_NAMES = {code: name for name, code in OPCODES.items()}


def _words_of(bits):
    return -(-bits // 32)


def encode_value(layout, value):
    """32-bit words of ``value`` (an int or a dict in ``layout``), least significant first."""
    raw = value if isinstance(value, int) else layout.const(value).as_value().value
    return [(raw >> (32 * i)) & 0xFFFF_FFFF for i in range(_words_of(layout.size))]


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


@dataclass
class LayerImage:
    """DRAM contents that run a layer: ``data`` from byte 0, the program at ``prog_addr``, and
    the output of image ``n`` at ``out_addrs[n]`` (``out_bytes`` each, ``container``-bit
    elements in ``E x F x M`` order)."""

    layer: object
    data: bytes
    prog_addr: int
    program: list
    out_addrs: list
    out_bytes: int
    container: int
    passes: list            # the array passes of one image (rtl.passcfg.ArrayPass)

    def output(self, read):
        """The (N, M, E, F) output tensor, reading DRAM with ``read(addr, nbytes) -> bytes``."""
        layer = self.layer
        count = layer.M * layer.E * layer.F
        dtype = {8: "<i1", 16: "<i2", 32: "<i4", 64: "<i8"}[self.container]
        signed = layer.output is None or layer.output.out_signed
        if not signed:
            dtype = dtype.replace("i", "u")
        outs = []
        for addr in self.out_addrs:
            raw = np.frombuffer(read(addr, self.out_bytes), dtype=dtype)[:count]
            outs.append(raw.astype(np.int64).reshape(layer.E, layer.F, layer.M).transpose(2, 0, 1))
        return np.stack(outs)


def _to_bytes(words, bits):
    nbytes = bits // 8
    return b"".join(int(w).to_bytes(nbytes, "little") for w in words)


def layer_image(cfg, layer, x, w, bias=None):
    """The :class:`LayerImage` running ``layer`` (:class:`gen.layer.Layer`) on ``x`` (N, C, H, W)
    with weights ``w`` (M, C, R, S) and optional ``bias`` (M,).

    Raises ``ValueError`` naming the limit when the layer does not fit ``cfg`` (precisions,
    accumulator width, scratchpads, array, GLB size).
    """
    from gen.glbplan import plan_layer
    from gen.golden import pad_input
    from gen.rowstationary import ConvShape
    from rtl.outstage import outstage_config_value
    from rtl.store import OUT_CONTAINERS

    layer.check_arrays(x, w, bias)
    check_layer_fits(cfg, layer, 0 if bias is None else np.abs(np.asarray(bias)).max(initial=0))
    xp = pad_input(np.asarray(x, dtype=np.int64), layer.pad)
    shape = ConvShape(C=layer.C, H=layer.H + 2 * layer.pad, W=layer.W + 2 * layer.pad, M=layer.M,
                      R=layer.R, S=layer.S, stride=layer.stride)
    plans = [plan_layer(cfg, shape, xp[n], np.asarray(w), bias, pa=layer.act_bits,
                        act_signed=layer.act_signed) for n in range(layer.N)]
    plan = plans[0]
    bus, bus_bytes = cfg.dram_data_bits, cfg.dram_bytes
    container = output_container(cfg, layer.output)
    out_words = -(-plan.store_count * container // bus)
    # plan words: [filters | input | psum tile]
    n_filter, n_input = plan.input_word, plan.psum_word - plan.input_word
    n_psum = len(plan.words) - plan.psum_word

    def align(n):
        return -(-n // ALIGN) * ALIGN

    def build(prog_size):
        end = align(prog_size)

        def place(nbytes):
            nonlocal end
            addr, end = end, align(end + nbytes)
            return addr

        regions = {"filters": place(n_filter * bus_bytes),
                   "inputs": [place(n_input * bus_bytes) for _ in plans],
                   "psum": place(n_psum * bus_bytes),
                   "outputs": [place(out_words * bus_bytes) for _ in plans]}
        regions["end"] = end

        prog = Program(cfg)
        if n_filter:
            prog.load(regions["filters"], 0, n_filter)
        for n in range(len(plans)):
            prog.load(regions["inputs"][n], plan.input_word, n_input)
            prog.load(regions["psum"], plan.psum_word, n_psum)
            prog.sync()
            for cmd in plan.passes:
                prog.write("sender_table", cmd.sender_table)
                prog.write("roles", cmd.roles)
                prog.write("writer_table", cmd.writer_table)
                prog.write("sender_job", [cmd.sender_job])
                prog.write("pass_cfg", [cmd.array_pass.pe.const(cfg).as_value().value])
                prog.write("writer_job", [cmd.writer_job])
                prog.run_pass()
            prog.sync()
            prog.write("store_job", [{"src": plan.store_src, "count": plan.store_count,
                                      "container": OUT_CONTAINERS.index(container),
                                      "stage": outstage_config_value(cfg, layer.output)}])
            prog.store(regions["outputs"][n], out_words)
        prog.end()
        return prog, regions

    prog, _ = build(0)
    prog, regions = build(len(prog.words) * 4)
    data = bytearray(regions["end"])
    code = prog.to_bytes()
    data[:len(code)] = code
    fil = _to_bytes(plan.words[:n_filter], bus)
    data[regions["filters"]:regions["filters"] + len(fil)] = fil
    for n, p in enumerate(plans):
        inp = _to_bytes(p.words[plan.input_word:plan.psum_word], bus)
        data[regions["inputs"][n]:regions["inputs"][n] + len(inp)] = inp
    ps = _to_bytes(plan.words[plan.psum_word:], bus)
    data[regions["psum"]:regions["psum"] + len(ps)] = ps
    return LayerImage(layer=layer, data=bytes(data), prog_addr=0, program=prog.words,
                      out_addrs=regions["outputs"], out_bytes=out_words * bus_bytes,
                      container=container, passes=[cmd.array_pass for cmd in plan.passes])
