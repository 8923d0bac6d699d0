"""The accelerator configuration: one frozen dataclass, its validation, presets and JSON form."""

import dataclasses
import json
import re
from dataclasses import dataclass, fields

__all__ = ["AccelConfig", "PRESETS", "preset", "parse_overrides"]


def _ceil_log2(n):
    return max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class AccelConfig:
    """Every parameter of one accelerator instance.

    Hardware units take the config as their first argument and derive all widths from it.
    Construction validates every field and raises ``ValueError("<field>: <rule> (got <value>)")``.

    Spad depths are in *entries*: a filter spad entry holds ``lanes`` weights (one per MAC lane),
    a psum spad entry holds ``lanes`` partial sums, an ifmap spad entry holds one activation.
    """

    name: str = "custom"
    #: PE array size (rows run vertically, psums flow up a column).
    rows: int = 6
    cols: int = 8
    #: MAC lanes per PE: filters processed at once for one activation.
    lanes: int = 4
    #: MAC kind: ``serial`` (one activation bit per cycle) or ``parallel`` (one activation per cycle).
    mac: str = "serial"
    #: Maximum activation precision; per layer the runtime precision ``pa`` is 1..act_bits.
    act_bits: int = 8
    #: Signed weight precision.
    weight_bits: int = 8
    #: Partial-sum and accumulator precision.
    psum_bits: int = 32
    #: Scratchpad depths in entries (a filter or psum entry holds ``lanes`` values, an ifmap
    #: entry one activation).
    filter_spad: int = 64
    ifmap_spad: int = 16
    psum_spad: int = 8
    #: Global buffer size in bytes and number of banks.
    glb_bytes: int = 32 * 1024
    glb_banks: int = 4
    #: AXI4 DRAM port.
    dram_data_bits: int = 64
    dram_addr_bits: int = 32
    #: Serial MAC skips zero activations and insignificant leading bits (data-dependent timing).
    dynamic_precision: bool = False
    #: Precision-packed DRAM activations (``gen/packing.py``): elements per group with one
    #: precision header, 0 for no packing hardware.
    pack_group: int = 0

    def __post_init__(self):
        def rule(ok, field, text):
            if not ok:
                raise ValueError(f"{field}: {text} (got {getattr(self, field)!r})")

        for f in fields(self):
            value = getattr(self, f.name)
            if f.type is int and isinstance(value, bool) or not isinstance(value, f.type):
                raise ValueError(f"{f.name}: must be of type {f.type.__name__} (got {value!r})")
        rule(1 <= self.rows <= 64, "rows", "must be in 1..64")
        rule(1 <= self.cols <= 64, "cols", "must be in 1..64")
        rule(1 <= self.lanes <= 64, "lanes", "must be in 1..64")
        rule(self.mac in ("serial", "parallel"), "mac", "must be 'serial' or 'parallel'")
        rule(1 <= self.act_bits <= 16, "act_bits", "must be in 1..16")
        rule(2 <= self.weight_bits <= 16, "weight_bits", "must be in 2..16")
        rule(self.act_bits + self.weight_bits + 1 <= self.psum_bits <= 64, "psum_bits",
             f"must be in act_bits + weight_bits + 1 .. 64 (here "
             f"{self.act_bits + self.weight_bits + 1}..64)")
        rule(1 <= self.filter_spad <= 4096, "filter_spad", "must be in 1..4096 entries")
        rule(1 <= self.ifmap_spad <= 4096, "ifmap_spad", "must be in 1..4096 entries")
        rule(1 <= self.psum_spad <= 4096, "psum_spad", "must be in 1..4096 entries")
        rule(self.dram_data_bits in (32, 64, 128, 256), "dram_data_bits", "must be 32, 64, 128 or 256")
        rule(16 <= self.dram_addr_bits <= 64, "dram_addr_bits", "must be in 16..64")
        rule(self.glb_banks >= 1 and self.glb_banks & (self.glb_banks - 1) == 0, "glb_banks",
             "must be a power of two")
        bank_unit = self.glb_banks * self.dram_data_bits // 8
        rule(self.glb_bytes >= bank_unit * 16 and self.glb_bytes % bank_unit == 0, "glb_bytes",
             f"must be a multiple of glb_banks * dram_data_bits / 8 (here {bank_unit}) and hold "
             f"at least 16 words per bank")
        rule(not self.dynamic_precision or self.mac == "serial", "dynamic_precision",
             "requires mac='serial'")
        per_word = self.dram_data_bits // (8 if self.act_bits <= 8 else 16)
        rule(self.pack_group == 0 or (self.pack_group % per_word == 0 and
                                      self.pack_group <= 256 and
                                      self.pack_group & (self.pack_group - 1) == 0),
             "pack_group", f"must be 0 or a power of two up to 256 and a multiple of the "
             f"activations per DRAM word (here {per_word})")

    # Derived widths -------------------------------------------------------------------------------

    @property
    def pes(self):
        """Number of processing elements."""
        return self.rows * self.cols

    @property
    def dim_bits(self):
        """Width of a row/column count inside the hardware (tensor sides up to 4095)."""
        return 12

    @property
    def pa_bits(self):
        """Width of a runtime activation precision value (1..act_bits)."""
        return _ceil_log2(self.act_bits + 1)

    @property
    def dram_bytes(self):
        """Bytes per DRAM data beat."""
        return self.dram_data_bits // 8

    @property
    def glb_words(self):
        """GLB depth in DRAM-bus-wide words, summed over banks."""
        return self.glb_bytes // self.dram_bytes

    @property
    def peak_macs_per_cycle(self):
        """Physical limit: rows*cols*lanes MACs per cycle at one activation per cycle."""
        return self.rows * self.cols * self.lanes

    # Serialisation ---------------------------------------------------------------------------------

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown config field (known: {', '.join(sorted(known))})")
        return cls(**d)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    def replace(self, **changes):
        return self.from_dict({**self.to_dict(), **changes})


PRESETS = {
    # CI-sized: small enough that a whole-layer Verilator/Icarus run takes seconds.
    "tiny": AccelConfig(name="tiny", rows=3, cols=4, lanes=2, filter_spad=32, ifmap_spad=16,
                        psum_spad=4, glb_bytes=8 * 1024, glb_banks=2, dram_data_bits=32),
    "default": AccelConfig(name="default"),
    # Eyeriss (JSSC 2017): 12x14 PEs, spads ifmap 12 / filter 224 / psum 24 words, 108 KiB GLB,
    # 16-bit data, 64-bit DRAM bus; one MAC lane per PE, bit-parallel as in the chip.
    "eyeriss": AccelConfig(name="eyeriss", rows=12, cols=14, lanes=1, mac="parallel", act_bits=16,
                           weight_bits=16, psum_bits=48, filter_spad=224, ifmap_spad=12,
                           psum_spad=24, glb_bytes=108 * 1024, glb_banks=4,
                           dram_data_bits=64),
}


def preset(name):
    """The named preset; ``ValueError`` listing the known names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"config: unknown preset {name!r} (known: {', '.join(PRESETS)})") from None


def parse_overrides(cfg, assignments):
    """Apply ``["rows=6", "mac=parallel", ...]`` to ``cfg``; values are parsed by field type."""
    types = {f.name: f.type for f in fields(AccelConfig)}
    changes = {}
    for text in assignments:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"--set {text!r}: expected FIELD=VALUE")
        if key not in types:
            raise ValueError(f"{key}: unknown config field (known: {', '.join(sorted(types))})")
        raw = raw.strip()
        if types[key] is int:
            try:
                changes[key] = int(raw, 0)
            except ValueError:
                raise ValueError(f"{key}: must be an integer (got {raw!r})") from None
        elif types[key] is bool:
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(f"{key}: must be true or false (got {raw!r})")
            changes[key] = raw.lower() in ("1", "true", "yes")
        else:
            changes[key] = raw
    return cfg.replace(**changes)


def parameter_reference():
    """Markdown reference of every :class:`AccelConfig` field: type, default, value in each
    preset, meaning (the ``#:`` comment above the field) and validation rule (the text of its
    ``rule`` in ``__post_init__``, without the ``(here ...)`` values an error message adds),
    read from this module's source so it cannot drift."""
    import ast
    import inspect
    source = inspect.getsource(AccelConfig)
    tree = ast.parse(source)
    lines = source.splitlines()
    meaning, rules = {}, {}
    cls = tree.body[0]
    previous = ""
    for node in cls.body:
        if isinstance(node, ast.AnnAssign):
            k = node.lineno - 2
            while k >= 0 and lines[k].strip().startswith("#:"):
                k -= 1
            comment = " ".join(l.strip()[2:].strip() for l in lines[k + 1:node.lineno - 1])
            # fields listed under one comment share it
            previous = comment or previous
            meaning[node.target.id] = previous.replace("``", "`")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "rule"
                and isinstance(node.args[1], ast.Constant)):
            text = node.args[2]
            if isinstance(text, ast.Constant):
                text = text.value
            else:                                    # f-string: drop the "(here <value>)" parts
                text = re.sub(r" \(here [^)]*\)", "", "".join(
                    p.value if isinstance(p, ast.Constant) else "{}" for p in text.values))
            rules.setdefault(node.args[1].value, []).append(text)
    names = list(PRESETS)
    out = ["| field | type | default | " + " | ".join(names) + " | meaning | rule |",
           "|---|---|---|" + "---|" * len(names) + "---|---|"]
    for f in fields(AccelConfig):
        if f.name == "name":
            continue
        values = [str(getattr(PRESETS[n], f.name)) for n in names]
        out.append(f"| `{f.name}` | {f.type.__name__} | {f.default} | " + " | ".join(values) +
                   f" | {meaning.get(f.name, '')} | {'; '.join(rules.get(f.name, []))} |")
    return "\n".join(out) + "\n"
