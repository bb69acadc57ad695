/*
 * edge_evo EMNS in C99 (seed 000, Karahan 2025, "Evolvable Modular Neural Systems"): integer inference of
 * the maximum-size, masked EMNS layout and on-device evolution with the `select` rule, bit-exact with
 * edge_evo/kernels/emns.py (forward_int8, build_luts, mutate_int) and edge_evo/strategies/emns.py
 * (EMNS variant "select", mode "int8"). Equations: the docstring of edge_evo/models/emns.py.
 *
 * Numbers: values int16 Q11, resistances uint8 Q0.8, layer signals int8 Q4, mu int32 Q24, factors Q16.
 * Basis tables (sqrt|x|, sin, exp(-x^2): Q3 -> Q5/Q7/Q7; tanh, sigmoid, relu, swish, linear: Q4 -> Q7/Q7/Q4/Q4/Q4)
 * are data exported by Python; each neuron's activation-mixture table is rebuilt here with the same integer
 * maths whenever its coefficients mutate.
 *
 * Score on the device: an integer loss (lower is better), by default the sum over the batch of
 * (y_q - t_q)^2 in Q8 (outputs and targets in Q4). Python's score is perf = -mean over samples of
 * mean over outputs of (y - t)^2 = -loss / (256 * B * n_out) exactly when targets are Q4 values and
 * n_out is a power of two, so: dP >= 0 <=> L_child <= L_parent, and dP > dp_eps <=> L_parent - L_child >
 * floor(dp_eps * 256 * B * n_out) (edge_evo/export/c_emns.py computes that threshold). No float anywhere.
 *
 * RAM (EE_EMNS_MEM_BYTES): two genome slots (parent and child: values, resistances, mixture tables) and
 * the best genome's values: 2 * (3 n + 256 N) + 2 n bytes for n parameters and N neurons of the maximum
 * layout. Accepting a child swaps the slots (no copy). Masks are constant on the device (no growth,
 * pruning or connection formation: the Python options grow_patience, prune_eps and form_rate must be 0).
 * The initial genome is data (Python's init uses float64); the device starts from it.
 */
#ifndef EDGE_EVO_EMNS_H
#define EDGE_EVO_EMNS_H

#include "edge_evo_rt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef char ee_emns_assert_shift64[(((int64_t)-5) >> 1) == -3 ? 1 : -1];

#define EE_EMNS_VAL_FRAC 11
#define EE_EMNS_Y_FRAC 4
#define EE_EMNS_VAL_MAX (10 << EE_EMNS_VAL_FRAC)
#define EE_EMNS_Z_MAX (5 << EE_EMNS_VAL_FRAC)
#define EE_EMNS_Y_MAX (5 << EE_EMNS_Y_FRAC)
#define EE_EMNS_MAX_FAN_IN 4096u
#define EE_EMNS_LAYOUT_COLS 9u
#define EE_EMNS_PURPOSE_SELECT 0x80000001u
#define EE_EMNS_PURPOSE_BATCH 0x80000002u

/* The network: EMNSSpec.layout() rows {n_in, n_out, off_agg, off_act, off_w, off_bias, off_gain, off_conn,
 * off_neuron} of the maximum layout, the basis tables and the (constant) active masks. */
typedef struct {
    uint16_t n_layers;
    const uint32_t *layout;      /* n_layers * 9 */
    uint32_t n_params, n_neurons, n_conn;
    uint16_t max_width;          /* widest layer of the maximum layout (inputs included) */
    const int8_t *agg_t;         /* [3][256]: sqrt|s| Q5, sin Q7, gauss Q7, indexed by s in Q3 + 128 */
    const int8_t *act_t;         /* [5][256]: tanh, sigmoid Q7, relu, swish, linear Q4, indexed by z Q4 + 128 */
    const uint8_t *nmask;        /* n_neurons */
    const uint8_t *cmask;        /* n_conn */
} ee_emns_model_t;

/* Scratch of ee_emns_forward: two int8 buffers of the widest layer. */
#define EE_EMNS_SCRATCH_BYTES(max_width) (2u * (size_t)(max_width))

/* Activation-mixture table of every neuron: luts[neuron * 256 + q] (int8 Q4 -> Q4), kernels.emns.build_luts. */
void ee_emns_build_luts(const ee_emns_model_t *m, const int16_t *values, int8_t *luts);

/* One sample: x int8 Q4 [dims[0]] -> y int8 Q4 [n_out of the last layer] (inactive outputs are 0). */
void ee_emns_forward(const ee_emns_model_t *m, const int16_t *values, const int8_t *luts, const int8_t *x,
                     int8_t *y, int8_t *scratch);

/* kernels.emns.mutate_int of one genome with stream key `key` (active parameters only, in place). */
void ee_emns_mutate(const ee_emns_model_t *m, int16_t *values, uint8_t *resist, uint32_t key, int32_t mu_q,
                    int32_t val_k, int32_t res_k, int32_t r_max_q);

/* FNV-1a 32 of the values (int16, low byte first) then the resistances
 * unless resist is NULL (edge_evo.export.c_emns.emns_hash). */
uint32_t ee_emns_hash(const int16_t *values, const uint8_t *resist, size_t n);

/* ------------------------------------------------------------------ select evolution */
typedef struct {
    uint32_t seed;
    int32_t mu0_q, mu_min_q, mu_max_q;        /* Q24 (strategies.emns._mu_q) */
    int32_t f_better_q, f_worse_q, f_flat_q;  /* Q16 (strategies.emns._q16) */
    int64_t dp_thr;                           /* dP > dp_eps <=> L_parent - L_child > dp_thr (loss units) */
    uint32_t keep_worse_thr;                  /* rng.bernoulli_threshold(keep_worse) */
    int32_t val_k, res_k, r_max_q;            /* EMNS.int_constants() */
} ee_emns_cfg_t;

typedef struct {
    int16_t *values;   /* n_params */
    uint8_t *resist;   /* n_params */
    int8_t *luts;      /* n_neurons * 256, always the tables of `values` */
} ee_emns_genome_t;

typedef struct {
    ee_emns_cfg_t cfg;
    const ee_emns_model_t *model;
    ee_emns_genome_t slot[2];
    uint8_t parent;           /* slot index of the parent */
    int16_t *best;            /* values of the best parent so far */
    uint32_t generation;      /* generation of the next step */
    int32_t mu_q;
    int64_t loss_parent, loss_child, loss_best;   /* last step's losses; loss_best < 0: none yet */
    uint8_t accepted;         /* last step: 1 when the child became the parent */
} ee_emns_t;

/* Integer loss of one genome (>= 0, lower is better); individual 0 = parent, 1 = child; the same batch
 * for both genomes of a generation. A negative return aborts the step. */
typedef int64_t (*ee_emns_loss_fn)(void *ctx, const ee_emns_model_t *m, const ee_emns_genome_t *g,
                                   uint32_t generation, uint32_t individual);

#define EE_EMNS_MEM_BYTES(n_params, n_neurons) \
    (8u * (size_t)(n_params) + 512u * (size_t)(n_neurons) + 4u)

/* Copies the initial genome (values, resistances) into the parent slot and builds its tables.
 * 0 on success, -1 when mem is too small or the model/configuration is invalid. */
int ee_emns_init(ee_emns_t *e, const ee_emns_cfg_t *cfg, const ee_emns_model_t *m, const int16_t *values,
                 const uint8_t *resist, void *mem, size_t mem_bytes);
/* One select step (EMNS.ask + EMNS.tell): child = mutate(parent) with key(seed, g, 1), both scored,
 * mu adapted, child kept if not worse or, when worse, if u32(key(seed, g, PURPOSE_SELECT), 0) < keep_worse_thr.
 * 0 on success, -1 when the loss function failed. */
int ee_emns_step(ee_emns_t *e, ee_emns_loss_fn loss, void *ctx);
const ee_emns_genome_t *ee_emns_parent(const ee_emns_t *e);

/* ------------------------------------------------------------------ squared-error loss helper */
typedef struct {
    const int8_t *X;       /* [n_samples][n_in] Q4 */
    const int8_t *T;       /* [n_samples][n_out] Q4 targets */
    uint32_t n_samples;
    uint16_t n_in, n_out;
    uint32_t batch;        /* 0: every sample each step; else batch draws idx = bounded(u32(key(seed, g, BATCH), b), N) */
    uint32_t seed;
    int8_t *y;             /* n_out */
    int8_t *scratch;       /* EE_EMNS_SCRATCH_BYTES(max_width) */
} ee_emns_data_t;

/* Sum over the batch of sum over outputs of (y_q - t_q)^2 (Q8); a callback for ee_emns_step (ctx: data). */
int64_t ee_emns_sse(void *data, const ee_emns_model_t *m, const ee_emns_genome_t *g, uint32_t generation,
                    uint32_t individual);

#ifdef __cplusplus
}
#endif

#endif /* EDGE_EVO_EMNS_H */
