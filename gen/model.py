"""Analytical model of a run: what the hardware counters must read (exact parts so far).

The model starts with the quantities that follow directly from the program and the mapping:
DRAM bytes (program fetch, LOADs, STOREs) and the PEs' active MAC cycles. Cycles, GLB and
scratchpad traffic, and energy come with the mapper.
"""

from gen.pe_model import pe_mac_bound
from gen.program import decode
from rtl.control import FETCH_BYTES

__all__ = ["program_dram_bytes", "pe_active_cycles", "exact_counters"]


def program_dram_bytes(cfg, words, prog_addr=0):
    """``(read, written)`` DRAM bytes of running program ``words`` at ``prog_addr``: one
    ``FETCH_BYTES`` block per block the program spans (the controller fetches each once, in
    order; assumes no read error), plus every LOAD's words; every STORE's words written."""
    nb = cfg.dram_bytes
    blocks = (prog_addr + 4 * len(words) - 1) // FETCH_BYTES - prog_addr // FETCH_BYTES + 1
    fetched = blocks * FETCH_BYTES
    read = written = 0
    for ins in decode(cfg, words):
        if ins.op in ("LOAD", "STORE"):
            nbytes = ins.fields["row_words"] * ins.fields["rows"] * nb
            if ins.op == "LOAD":
                read += nbytes
            else:
                written += nbytes
    return fetched + read, written


def pe_active_cycles(cfg, passes):
    """Summed active MAC cycles of all PEs over ``passes`` (:class:`rtl.passcfg.ArrayPass`): each
    PE of a block spends :func:`gen.pe_model.pe_mac_bound` cycles per output column."""
    return sum(pe_mac_bound(cfg, ap.pe) * ap.pe.cols * sum(b.height * b.width for b in ap.blocks)
               for ap in passes)


def exact_counters(cfg, image):
    """Counters of running :class:`gen.program.LayerImage` ``image`` that the model predicts
    exactly: ``dram_rd``, ``dram_wr``, ``pe_active``."""
    read, written = program_dram_bytes(cfg, image.program, image.prog_addr)
    return {"dram_rd": read, "dram_wr": written,
            "pe_active": image.layer.N * pe_active_cycles(cfg, image.passes)}
