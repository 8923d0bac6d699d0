"""Cycle model of one PE pass with no stalls: the timing contract of rtl/pe.py, step by step."""

import numpy as np

__all__ = ["pe_pass_cycles", "pe_column_cycles", "pe_mac_bound", "op_cycle_table"]


def pe_mac_bound(cfg, job):
    """MAC-bound cycles per output column: ``groups*chans*taps`` operations of ``c`` cycles each.

    ``c = pa`` for the serial MAC and 1 for the parallel one. A column can never be faster
    (with ``dynamic_precision`` this is the worst case: every activation uses all ``pa`` bits).
    """
    ops = job.groups(cfg) * job.chans * job.taps
    return ops * (job.pa if cfg.mac == "serial" else 1)


def op_cycle_table(cfg, job, x=None):
    """``(cols, ops)`` cycles of every MAC operation of a pass, in issue order (group, channel,
    tap): :func:`rtl.mac.op_cycles` of the activation each operation uses. ``x`` is the pass's
    ifmap row ``(chans, row_length)`` (values or raw bits); it matters only with
    ``dynamic_precision`` (without it, the worst case: all ``pa`` bits)."""
    from rtl.mac import mac_cycles, op_cycles
    groups = job.groups(cfg)
    if x is None:
        return np.full((job.cols, groups * job.chans * job.taps), mac_cycles(cfg, job.pa))
    cyc = op_cycles(cfg, x, job.pa, job.act_signed)                  # (chans, row_length)
    pos = np.arange(job.cols)[:, None] * job.stride + np.arange(job.taps)[None, :]
    per_col = cyc[:, pos].transpose(1, 0, 2).reshape(job.cols, -1)   # (cols, chans*taps)
    return np.tile(per_col, groups)


def pe_column_cycles(cfg, job):
    """Steady-state cycles per output column of an unstalled pass (exact, from the step model).

    Equals :func:`pe_mac_bound` when the ifmap load and the drain hide behind the MAC; with one
    cycle per operation (parallel MAC, or serial at ``pa = 1``) and a double-buffered psum spad
    it is ``max(ops + chans*stride + 1, filters + 1)``.
    """
    from dataclasses import replace
    return (pe_pass_cycles(cfg, replace(job, cols=17)) - pe_pass_cycles(cfg, replace(job, cols=9))) / 8


def pe_pass_cycles(cfg, job, x=None):
    """Cycles from the ``start`` cycle to the ``done`` cycle of one unstalled pass (ifmap row
    ``x`` as in :func:`op_cycle_table`, needed with dynamic precision).

    Mirrors the sequencer of :class:`rtl.pe.ProcessingElement`: filter load, per column an ifmap
    load, a bank wait, issue of ``groups*chans*taps`` operations one cycle ahead of the MAC, and
    the drain of ``filters`` psums from a double- (or single-) buffered psum spad.
    """
    groups = job.groups(cfg)
    ops = groups * job.chans * job.taps
    table = op_cycle_table(cfg, job, x)
    double = groups <= cfg.psum_spad // 2

    t = 1                                         # first cycle after the start cycle
    if job.load_filters:
        t += ops
    mac_last = -1                                 # last busy cycle of the MAC so far
    bank_free = [0, 0]                            # first cycle a bank may be refilled
    stored = []                                   # cycle each column's results are all stored
    drain_free = 0                                # first cycle the drain may start a column
    bank = 0
    for f in range(job.cols):
        t += job.chans * (job.taps if f == 0 else job.stride)   # ifmap load, one word a cycle
        # WAIT_BANK: bank drained, and (single-buffered) the previous column fully stored
        wait = max(t, bank_free[bank])
        if not double and stored:
            wait = max(wait, stored[-1])
        elif double and len(stored) >= 2:
            wait = max(wait, stored[-2])
        issue = wait + 1                          # spad read of the first operation
        for k in range(ops):
            accept = max(issue + 1, mac_last)     # MAC takes it on its previous op's last cycle
            mac_last = accept + int(table[f, k])
            if k < ops - 1:
                issue = accept                    # the next read happens as the stage empties
        t = issue + 1                             # the ifmap load of the next column follows
        # results: o_sum valid the cycle after the last busy cycle, bank full one later
        full_at = mac_last + 2
        stored.append(full_at)
        start = max(full_at, drain_free)
        last_emit = start + job.filters
        drain_free = last_emit + 1
        bank_free[bank] = last_emit + 1
        bank ^= double
    return drain_free + 1                         # done: the cycle after the last psum left


def pe_ifmap_row(ap, b, i, j, x):
    """The ifmap row ``(chans, row_length)`` that PE ``(i, j)`` of block ``b`` of array pass
    ``ap`` receives, cut from the input ``x`` (C, H, W; the padded band the pass reads):
    channels from ``b.c0``, row ``(b.e0 + j) * stride + b.r0 + i``; zeros beyond ``x``."""
    job = ap.pe
    h = (b.e0 + j) * job.stride + b.r0 + i
    row = np.zeros((job.chans, job.row_length()), dtype=np.int64)
    if h < x.shape[1]:
        part = x[b.c0:b.c0 + job.chans, h, :job.row_length()]
        row[:part.shape[0], :part.shape[1]] = part
    return row


def pass_op_cycles(cfg, ap, x):
    """``{(row, col): op_cycle_table}`` of every PE of array pass ``ap`` on input band ``x``
    (None: the worst case, all ``pa`` bits)."""
    return {rc: op_cycle_table(cfg, ap.pe, None if x is None else pe_ifmap_row(ap, b, i, j, x))
            for rc, (b, i, j) in ap.pe_roles().items()}
