/*
 * Golden transcript of the C runtime: every value of tests/golden/core_v1.npz recomputed in C and
 * printed as text lines "tag v v ...". tests/test_c_runtime.py generates golden_data.h from the npz
 * and the expected transcript from the same file, then diffs them (host, sanitizers, Cortex-M, aarch64).
 * Lines starting with '#' are diagnostics (stack use) and are not compared.
 */
#include "edge_evo_rt.h"
#include "ee_port.h"
#include "golden_data.h"

static ee_tx_t tx;
static int32_t logits[GD_MAX_OUT];
static int8_t scratch[EE_MLP_SCRATCH_BYTES(GD_MAX_HIDDEN) + 1u];
static const unsigned shifts[GD_N_SHIFTS] = GD_SHIFTS;

static void rng_section(void)
{
    uint32_t keys[GD_N_KEYS];
    uint32_t i, k, r;
    for (k = 0; k < GD_N_KEYS; ++k) {
        keys[k] = ee_key(gd_key_triples[k][0], gd_key_triples[k][1], gd_key_triples[k][2]);
        ee_tx_str(&tx, "key");
        ee_tx_sp_u32(&tx, keys[k]);
        ee_tx_endl(&tx);
    }
    for (k = 0; k < GD_N_KEYS; ++k) {
        ee_tx_str(&tx, "u32");
        for (i = 0; i < GD_N_INDEX; ++i) {
            ee_tx_sp_u32(&tx, ee_u32(keys[k], gd_index[i]));
        }
        ee_tx_endl(&tx);
        ee_tx_str(&tx, "gauss");
        for (i = 0; i < GD_N_INDEX; ++i) {
            ee_tx_sp_i32(&tx, ee_gauss(ee_u32(keys[k], gd_index[i])));
        }
        ee_tx_endl(&tx);
    }
    for (r = 0; r < GD_N_MULT; ++r) {
        ee_tx_str(&tx, "gauss_scaled");
        for (i = 0; i < GD_N_INDEX; ++i) {
            ee_tx_sp_i32(&tx, ee_gauss_scaled(ee_u32(keys[GD_SCALED_KEY], gd_index[i]), gd_mult[r]));
        }
        ee_tx_endl(&tx);
    }
    for (r = 0; r < GD_N_BOUNDED; ++r) {
        ee_tx_str(&tx, "bounded");
        for (i = 0; i < GD_N_INDEX; ++i) {
            ee_tx_sp_u32(&tx, ee_bounded(ee_u32(keys[GD_SCALED_KEY], gd_index[i]), gd_bounded_n[r]));
        }
        ee_tx_endl(&tx);
    }
}

static void fixedpoint_section(void)
{
    uint32_t s, i;
    for (s = 0; s < GD_N_SHIFTS; ++s) {
        ee_tx_str(&tx, "rshift_round");
        for (i = 0; i < GD_N_ACC; ++i) {
            ee_tx_sp_i32(&tx, ee_rshift_round(gd_acc[i], shifts[s]));
        }
        ee_tx_endl(&tx);
        ee_tx_str(&tx, "requantize");
        for (i = 0; i < GD_N_ACC; ++i) {
            ee_tx_sp_i32(&tx, ee_requantize(gd_acc[i], shifts[s]));
        }
        ee_tx_endl(&tx);
    }
    for (s = 0; s < GD_N_LUTS; ++s) {
        int32_t q;
        ee_tx_str(&tx, "lut");
        for (q = -128; q < 128; ++q) {
            ee_tx_sp_i32(&tx, ee_lut_apply(gd_luts[s], (int8_t)q));
        }
        ee_tx_endl(&tx);
    }
}

static void mlp_section(void)
{
    uint32_t c, p, n, o;
    for (c = 0; c < GD_N_MLP; ++c) {
        const gd_mlp_case_t *mc = &gd_mlp_cases[c];
        for (p = 0; p < mc->n_genomes; ++p) {
            ee_mlp_t m;
            m.n_layers = mc->n_layers;
            m.dims = mc->dims;
            m.params = mc->genomes + (size_t)p * mc->n_params;
            m.lut = gd_mlp_lut;
            m.w_frac = 6;
            m.b_frac = 6;
            m.x_frac = 7;
            m.z_frac = 5;
            m.h_frac = 7;
            if (ee_mlp_n_params(&m) != mc->n_params) {
                ee_tx_str(&tx, "n_params mismatch");
                ee_tx_endl(&tx);
                ee_port_exit(3);
            }
            for (n = 0; n < mc->n_batch; ++n) {
                int am = ee_mlp_forward(&m, mc->X + (size_t)n * mc->dims[0], logits, scratch);
                uint16_t n_out = mc->dims[mc->n_layers];
                ee_tx_str(&tx, "mlp");
                for (o = 0; o < n_out; ++o) {
                    ee_tx_sp_i32(&tx, logits[o]);
                }
                ee_tx_str(&tx, " argmax");
                ee_tx_sp_i32(&tx, am);
                ee_tx_endl(&tx);
            }
        }
    }
}

int main(void)
{
    ee_tx_str(&tx, EE_CONTRACT);
    ee_tx_endl(&tx);
    rng_section();
    fixedpoint_section();
    mlp_section();
    ee_tx_str(&tx, "end");
    ee_tx_endl(&tx);
    return 0;
}
