"""Cycle model of one PE pass with no stalls: the timing contract of rtl/pe.py, step by step."""

__all__ = ["pe_pass_cycles", "pe_column_cycles", "pe_mac_bound"]


def pe_mac_bound(cfg, job):
    """MAC-bound cycles per output column: ``groups*chans*taps`` operations of ``c`` cycles each.

    ``c = pa`` for the serial MAC and 1 for the parallel one. A column can never be faster.
    """
    ops = job.groups(cfg) * job.chans * job.taps
    return ops * (job.pa if cfg.mac == "serial" else 1)


def pe_column_cycles(cfg, job):
    """Steady-state cycles per output column of an unstalled pass (exact, from the step model).

    Equals :func:`pe_mac_bound` when the ifmap load and the drain hide behind the MAC; with one
    cycle per operation (parallel MAC, or serial at ``pa = 1``) and a double-buffered psum spad
    it is ``max(ops + chans*stride + 1, filters + 1)``.
    """
    from dataclasses import replace
    return (pe_pass_cycles(cfg, replace(job, cols=17)) - pe_pass_cycles(cfg, replace(job, cols=9))) / 8


def pe_pass_cycles(cfg, job):
    """Cycles from the ``start`` cycle to the ``done`` cycle of one unstalled pass.

    Mirrors the sequencer of :class:`rtl.pe.ProcessingElement`: filter load, per column an ifmap
    load, a bank wait, issue of ``groups*chans*taps`` operations one cycle ahead of the MAC, and
    the drain of ``filters`` psums from a double- (or single-) buffered psum spad.
    """
    groups = job.groups(cfg)
    ops = groups * job.chans * job.taps
    c = job.pa if cfg.mac == "serial" else 1
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
            mac_last = accept + c
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
