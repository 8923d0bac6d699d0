"""System tests: whole layers on the generated Verilog of the top (``tiny``) under Icarus and
Verilator (layers larger than the GLB in rounds), with cocotbext-axi's AxiRam as DRAM and AxiLiteMaster for the CSRs, random pauses on
every AXI channel; outputs bit-exact vs the golden model, counters vs the model, error paths."""

import numpy as np
import pytest

from gen.golden import OutputStage
from gen.layer import Layer
from gen.mapper import Mapping
from gen.model import exact_counters, layer_model
from gen.program import Program, decode, layer_image
from gen.runlayer import SimJob, simulate
from rtl.config import preset
from rtl.control import ERRORS
from sim_tb.runner import SIMULATORS

STATUS_DONE, STATUS_ERROR = 0b010, 0b110

#: (layer, seed) on the serial-MAC ``tiny`` preset: every shape feature the mapper handles.
SERIAL_LAYERS = [
    Layer(N=1, C=3, H=4, W=5, M=3, R=1, S=1, act_bits=8, name="1x1 relu",
          output=OutputStage(mult=5, shift=7, relu=True, out_bits=8)),
    Layer(N=1, C=2, H=6, W=6, M=4, R=3, S=3, act_bits=8, name="3x3 raw"),
    Layer(N=1, C=1, H=7, W=7, M=2, R=5, S=5, act_bits=6, act_signed=True, name="5x5 folded",
          output=OutputStage(mult=-7, shift=5, relu=False, out_bits=12)),
    Layer(N=1, C=3, H=6, W=8, M=3, R=2, S=4, act_bits=3, name="2x4 non-square"),
    Layer(N=1, C=2, H=7, W=3, M=5, R=4, S=1, act_bits=5, act_signed=True, name="4x1 non-square"),
    Layer(N=1, C=3, H=9, W=9, M=3, R=3, S=3, stride=2, act_bits=8, act_signed=True,
          name="3x3 stride 2"),
    Layer(N=1, C=2, H=5, W=5, M=3, R=3, S=3, pad=1, act_bits=7, name="3x3 pad 1",
          output=OutputStage(mult=3, shift=4, relu=True, out_bits=8)),
    Layer(N=1, C=1, H=8, W=8, M=2, R=3, S=3, stride=3, pad=2, act_bits=2, name="stride 3 pad 2"),
    Layer(N=2, C=3, H=5, W=6, M=5, R=2, S=2, act_bits=4, act_signed=True, name="batch 2"),
    Layer(N=1, C=5, H=5, W=5, M=3, R=3, S=3, act_bits=1, name="pa 1 unsigned"),
    Layer(N=1, C=2, H=4, W=4, M=2, R=2, S=2, act_bits=1, act_signed=True, name="pa 1 signed"),
    Layer.fc(N=2, C=10, M=7, act_bits=8, act_signed=True, name="fc"),
    Layer(N=1, C=5, H=4, W=4, M=7, R=3, S=3, pad=1, act_bits=8, weight_bits=4,
          name="C, M odd, 4-bit weights", output=OutputStage(mult=1, shift=2, out_bits=16)),
    Layer(N=1, C=3, H=20, W=20, M=6, R=3, S=3, act_bits=2, name="GLB bands"),
    Layer(N=1, C=32, H=4, W=4, M=32, R=3, S=3, act_bits=2, act_signed=True,
          name="GLB filter groups", output=OutputStage(mult=1, shift=4, out_bits=8)),
]
#: On ``tiny`` with the parallel MAC.
PARALLEL_LAYERS = [
    Layer(N=1, C=2, H=6, W=6, M=4, R=3, S=3, act_bits=8, name="3x3 parallel"),
    Layer(N=2, C=3, H=5, W=5, M=3, R=5, S=3, pad=1, act_bits=8, act_signed=True,
          name="batch 2 5x3 pad parallel", output=OutputStage(mult=9, shift=6, out_bits=8)),
]

#: On ``tiny`` widened to 16-bit activations and weights, 48-bit psums and a 64-bit DRAM bus
#: (16-bit activation containers, 64-bit psum containers, two program words per bus word).
WIDE_LAYERS = [
    Layer(N=1, C=2, H=5, W=5, M=3, R=3, S=3, pad=1, act_bits=16, act_signed=True,
          weight_bits=16, name="16-bit raw 48-bit psums"),
    Layer(N=2, C=3, H=4, W=6, M=5, R=2, S=3, act_bits=12, weight_bits=10, name="12-bit batch 2",
          output=OutputStage(mult=-3, shift=20, out_bits=16)),
    Layer(N=1, C=4, H=14, W=14, M=4, R=3, S=3, act_bits=5, weight_bits=16, name="wide GLB bands",
          output=OutputStage(mult=5, shift=12, relu=True, out_bits=8)),
]
#: On ``tiny``, mappings the mapper rarely picks for small layers, forced: rounds outermost
#: (filters loaded once per round for both images) with channel groups chained up the array
#: columns, and the same layer images-outermost with psums added in the GLB.
FORCED = [
    (Layer(N=2, C=6, H=6, W=7, M=6, R=1, S=3, act_bits=5, act_signed=True, name="rounds chained",
           output=OutputStage(mult=3, shift=5, out_bits=8)),
     Mapping(chans=2, filters=2, mg=4, eb=3, order="rounds", chain=True)),
    (Layer(N=2, C=6, H=6, W=7, M=6, R=1, S=3, act_bits=5, name="images unchained"),
     Mapping(chans=2, filters=2, mg=4, eb=3, order="images", chain=False)),
]
#: On ``tiny`` with dynamic precision (PEs' timing follows the data): these layers with
#: ReLU-like inputs (:func:`sparsify`), so PEs finish their columns at different times.
DYNAMIC_LAYERS = [SERIAL_LAYERS[i] for i in (0, 1, 2, 5, 6, 8, 11, 13)]
#: On ``tiny`` with the packed DRAM format (LOADP inputs, STOREP outputs of an output stage):
#: these layers with the same ReLU-like inputs.
PACKED_LAYERS = [SERIAL_LAYERS[i] for i in (0, 1, 2, 6, 8, 12, 13, 14)]
CONFIGS = {
    "serial": (lambda: preset("tiny"), SERIAL_LAYERS),
    "dynamic": (lambda: preset("tiny").replace(dynamic_precision=True), DYNAMIC_LAYERS),
    "packed": (lambda: preset("tiny").replace(pack_group=8), PACKED_LAYERS),
    "parallel": (lambda: preset("tiny").replace(mac="parallel"), PARALLEL_LAYERS),
    "wide": (lambda: preset("tiny").replace(act_bits=16, weight_bits=16, psum_bits=48,
                                            dram_data_bits=64), WIDE_LAYERS),
}


def sparsify(x, seed):
    """``x`` with 40% zeros and every other row's values 3 bits smaller (arithmetic shift), the
    mix of zeros and short values that makes dynamic precision's timing uneven."""
    rng = np.random.default_rng(seed)
    x = x.copy()
    x[:, :, ::2] >>= 3
    x[rng.random(x.shape) < 0.4] = 0
    return x


def layer_job(cfg, layer, seed, mapping=None):
    x, w, bias = layer.random_arrays(seed, with_bias=True)
    if cfg.dynamic_precision or cfg.pack_group:
        x = sparsify(x, seed)
    image = layer_image(cfg, layer, x, w, bias, mapping=mapping, pack=bool(cfg.pack_group))
    job = SimJob(layer.name, image.data, image.prog_addr,
                 read=image.read_ranges(), max_cycles=400_000)
    return job, image, layer.golden(x, w, bias)


def check_layer(cfg, result, image, expected):
    name = image.layer.name
    assert result["status"] == STATUS_DONE, f"{name}: status {result}"
    regions = dict(zip((a for a, _ in image.read_ranges()), result["read"]))
    y = image.output(lambda addr, n: regions[addr][:n])
    np.testing.assert_array_equal(y, expected, err_msg=name)
    counters = result["counters"]
    model = exact_counters(cfg, image)
    assert {k: counters[k] for k in model} == model, name
    assert sum(v for k, v in counters.items() if k.startswith("t_")) == counters["cycles"], name


def error_jobs(cfg, layer):
    """(job, expected error) pairs: malformed program, DRAM read and write errors, then the layer
    again (the accelerator recovers without reset), then a watchdog timeout."""
    prog = Program(cfg)
    prog.sync()
    prog.words.append(0xEE)                      # no such opcode
    bad = SimJob("bad opcode", prog.to_bytes(), max_cycles=20_000)
    job, image, expected = layer_job(cfg, layer, 99)
    # the first LOAD's DRAM address (the first LOADP's with the packed format)
    src = next(i.fields["dram_addr"] for i in decode(cfg, image.program)
               if i.op == ("LOADP" if cfg.pack_group else "LOAD"))
    read_err = SimJob("DRAM read error", job.image, faults=[(src + 4, src + 8)],
                      read=job.read, max_cycles=50_000)
    write_err = SimJob("DRAM write error", job.image, read=job.read, max_cycles=50_000,
                       faults=[(image.outputs[0].addr, image.outputs[0].addr + 4)])
    hang = Program(cfg)
    hang.write("writer_job", [{"tops": 1, "filters": 1, "cols": 1, "col_stride": 1}])
    hang.run_pass()                              # the writer waits for a psum that never comes
    hang.end()
    timeout = SimJob("timeout", hang.to_bytes(), timeout=1000, max_cycles=20_000)
    return [(bad, "bad_opcode"), (read_err, "load_dram"), (write_err, "store_dram"),
            (job, (image, expected)), (timeout, "timeout")]


def variant_runs(variant):
    """``(cfg, layers, runs)`` of a CONFIGS variant: its layers' jobs (and, on ``serial``, the
    FORCED mappings')."""
    make_cfg, layers = CONFIGS[variant]
    cfg = make_cfg()
    runs = [layer_job(cfg, layer, seed) for seed, layer in enumerate(layers)]
    if variant == "serial":
        runs += [layer_job(cfg, layer, 50 + i, mapping) for i, (layer, mapping) in
                 enumerate(FORCED)]
    return cfg, layers, runs


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("variant", list(CONFIGS))
def test_layers_on_generated_verilog(sim, variant):
    cfg, layers, runs = variant_runs(variant)
    # error paths: on serial, and on packed with a packed output (LOADP and STOREP fail)
    errors = error_jobs(cfg, layers[1]) if variant == "serial" else \
        error_jobs(cfg, layers[0]) if variant == "packed" else []
    jobs = [job for job, _, _ in runs] + [job for job, _ in errors]
    results = simulate(cfg, jobs, sim=sim, pause=0.3, seed=len(jobs))
    for (job, image, expected), result in zip(runs, results):
        check_layer(cfg, result, image, expected)
    for (job, expect), result in zip(errors, results[len(runs):]):
        if isinstance(expect, tuple):
            check_layer(cfg, result, *expect)
        else:
            assert result["status"] == STATUS_ERROR, f"{job.name}: {result}"
            assert result["error_code"] == ERRORS[expect], f"{job.name}: {result}"


#: Largest relative error of the model's total cycles against the RTL (ideal DRAM).
CYCLE_TOLERANCE = 0.03


@pytest.mark.parametrize("variant", list(CONFIGS))
def test_model_predicts_cycles(variant):
    """With a DRAM without wait states, the model's cycles (total and per phase) are within
    :data:`CYCLE_TOLERANCE` of the hardware's on every system-test layer; the access counters are
    exact; program, load and MAC work phases match exactly."""
    cfg, layers, runs = variant_runs(variant)
    results = simulate(cfg, [job for job, _, _ in runs], sim="verilator", pause=0.0)
    for (job, image, expected), result in zip(runs, results):
        check_layer(cfg, result, image, expected)
        got, model = result["counters"], layer_model(cfg, image).counters
        assert abs(model["cycles"] - got["cycles"]) <= CYCLE_TOLERANCE * got["cycles"], \
            (job.name, model, got)
        for phase in ("t_program", "t_load"):
            assert model[phase] == got[phase], (job.name, phase, model[phase], got[phase])
