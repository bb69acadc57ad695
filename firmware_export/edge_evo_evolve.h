/*
 * edge_evo on-device evolution: GENREG (trust-based selection, P. Miller 2024) and OpenES (mirrored
 * sampling, rank shaping, momentum; seed 002 Algorithm 1) for int8 MLPs, in C99 without malloc.
 * Bit-exact twin of edge_evo/strategies/genreg.py (int8 mode), edge_evo/strategies/openes.py (int8 mode),
 * edge_evo/kernels/operators.py (crossover / masked mutation / weighted selection / init) and the batch and
 * Gumbel-sampled predictions of edge_evo/tasks/problem.py.
 *
 * Compact population memory: no population is ever stored. A child genome is a function of
 * (stored parents, seed, generation, child index) and is regenerated into one n-byte buffer when it is
 * evaluated; OpenES offspring are a function of (mean, seed, generation, pair).
 *
 *   GENREG RAM  = k*n + n + 8*P + 17*k + B  (+ <= 3 alignment) bytes      EE_GENREG_MEM_BYTES(P, k, n, B)
 *                 k stored survivors (int8 genomes), one work genome, P child records
 *                 {uint16 parent_a, uint16 parent_b, int32 trust}, per-survivor trust + 3 words of scratch,
 *                 a k-byte column, B bytes of per-sample correctness
 *   OpenES RAM  = 9*n + 4*P + 4*(P/2)  bytes                              EE_OPENES_MEM_BYTES(P, n)
 *                 int32 mean + int32 momentum, one work genome, P fitnesses, P/2 pair weights
 * (n = genome length, P = population, k = survivors, B = samples per generation.)
 *
 * Application API (the app owns the data; the library never sees it except through callbacks):
 *
 *   GENREG: ee_genreg_eval_fn(ctx, genome, generation, individual, correct[B]) writes 1/0 per sample of
 *           this generation's batch in batch order (the same batch for every individual).
 *           ee_genreg_init(&g, &cfg, &model, mem, sizeof mem);  then  ee_genreg_step(&g, eval, ctx)  per
 *           generation; ee_genreg_best(&g) is the best genome of the last evaluated generation.
 *   OpenES: ee_openes_fitness_fn(ctx, genome, generation, individual) returns an int32 fitness (higher is
 *           better); ee_openes_init(...) then ee_openes_step(&o, fitness, ctx); ee_openes_best(&o, out)
 *           writes the deployed genome (the rounded mean).
 *   Classification helper (ee_cls_task_t): labelled int8 samples in flash; ee_cls_eval draws the
 *           generation's batch (GENREG per-class scheme or uniform) and scores a genome by argmax or
 *           Gumbel-sampled predictions; ee_cls_genreg_eval / ee_cls_openes_eval adapt it to the callbacks.
 *
 * Integer only: the GENREG initial population takes its ranges already in Q units (init_wq / init_bq,
 * computed on the host), so no float or double code is linked.
 */
#ifndef EDGE_EVO_EVOLVE_H
#define EDGE_EVO_EVOLVE_H

#include "edge_evo_rt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef char ee_assert_arithmetic_shift64[(((int64_t)-5) >> 1) == -3 ? 1 : -1];

#define EE_MUTATION_SALT 0x4D555441u
#define EE_NOISE_SALT 0x4E4F4953u
#define EE_PURPOSE_SELECT 0x80000001u
#define EE_PURPOSE_BATCH 0x80000002u
#define EE_PURPOSE_PREDICT 0x80000003u
#define EE_PURPOSE_INIT 0x80000004u
#define EE_MAX_LAYERS 8u

/* FNV-1a 32 of a genome's bytes (transcripts compare genomes by this hash). */
uint32_t ee_fnv1a(const int8_t *g, size_t n);

/* child[idx] = mutate(crossover(pa, pb)) over the whole flat genome (operators.breed_int8 of every tensor):
 * the crossover key is key(seed, generation, child), the mutation key absorb(that, EE_MUTATION_SALT). */
void ee_breed_genome(const ee_mlp_t *m, const int8_t *pa, const int8_t *pb, uint32_t seed, uint32_t generation,
                     uint32_t child, uint32_t threshold, int32_t mult_w, int32_t mult_b, int8_t *out);

/* Genome i of the initial population (_breeding.init_population, int8; operators.uniform_init_int8):
 * each W element uniform on the integers [-init_wq, init_wq], each b element on [-init_bq, init_bq],
 * value = ee_bounded(h, 2 r + 1) - r. Ranges in Q(w_frac) / Q(b_frac) units, 0..127. */
void ee_init_genome(const ee_mlp_t *m, uint32_t seed, uint32_t individual, int32_t init_wq, int32_t init_bq,
                    int8_t *out);

/* ------------------------------------------------------------------ GENREG */
typedef struct {
    uint32_t seed;
    uint16_t population;         /* P */
    uint16_t n_survivors;        /* k = max(1, int(survival * P)) */
    uint16_t batch;              /* B: samples per generation */
    uint32_t mutation_threshold; /* bernoulli_threshold(child_mutation_rate) */
    int32_t mult_w, mult_b;      /* gauss_multiplier(mutation_scale * 2^w_frac), (... 2^b_frac) */
    int32_t q_decay, q_reward, q_penalty, q_inherit;   /* GenregParams.q_*() */
    int32_t init_wq, init_bq;    /* _breeding.init_range_q(init_w, w_frac), (init_b, b_frac) */
} ee_genreg_cfg_t;

typedef struct {
    uint16_t a, b;   /* parent rows in the survivor store */
    int32_t trust;   /* Q8 */
} ee_child_t;

typedef struct {
    ee_genreg_cfg_t cfg;
    ee_mlp_t model;         /* dims / formats / LUT; .params points at the genome being evaluated */
    size_t n;               /* genome length */
    ee_child_t *children;   /* P */
    int32_t *surv_trust;    /* k, best first */
    uint32_t *words;        /* 3k scratch words */
    int8_t *survivors;      /* k * n, best first */
    int8_t *genome;         /* n */
    int8_t *column;         /* k */
    uint8_t *correct;       /* B */
    uint32_t generation;    /* generation evaluated by the next step */
    int32_t best_trust;
} ee_genreg_t;

typedef void (*ee_genreg_eval_fn)(void *ctx, const int8_t *genome, uint32_t generation, uint32_t individual,
                                  uint8_t *correct);

#define EE_ALIGN4(x) (((size_t)(x) + 3u) & ~(size_t)3u)
#define EE_GENREG_MEM_BYTES(P, k, n, B) \
    (8u * (size_t)(P) + 16u * (size_t)(k) + EE_ALIGN4((size_t)(k) * (size_t)(n) + (size_t)(n) + (size_t)(k) + (size_t)(B)))

/* 0 on success, -1 when mem is too small or the configuration is invalid. */
int ee_genreg_init(ee_genreg_t *g, const ee_genreg_cfg_t *cfg, const ee_mlp_t *model, void *mem, size_t mem_bytes);
/* One generation: evaluate all P children, update trust, keep the top k, draw the next parents.
 * 0 on success, -2 when the selection weights overflow 32 bits (Python raises the same). */
int ee_genreg_step(ee_genreg_t *g, ee_genreg_eval_fn eval, void *ctx);
const int8_t *ee_genreg_best(const ee_genreg_t *g);

/* ------------------------------------------------------------------ OpenES */
#define EE_SHAPING_RANK5 0u
#define EE_SHAPING_CENTERED 1u

typedef struct {
    uint32_t seed;
    uint16_t population;                 /* P, even */
    uint8_t shaping;                     /* EE_SHAPING_* */
    int32_t beta_q, lr_q, wd_q;          /* q16(momentum), q16(lr), q16(weight_decay) */
    int32_t sigma_decay_q, lr_decay_q, lr_min_q;
    int32_t sm[2u * EE_MAX_LAYERS];      /* gauss multiplier of each tensor W1, b1, W2, ... */
    int32_t sm_min[2u * EE_MAX_LAYERS];
    int32_t init_a[EE_MAX_LAYERS];       /* W_l ~ U[-A, A] in Q(w_frac + 8); biases start at 0 */
} ee_openes_cfg_t;

typedef struct {
    ee_openes_cfg_t cfg;     /* sm and lr_q decay in place */
    ee_mlp_t model;
    size_t n;
    int32_t *mean, *mom;     /* n each, Q(frac + 8) */
    int32_t *fitness;        /* P */
    int32_t *d;              /* P/2 */
    int8_t *genome;          /* n */
    uint32_t generation;
    int32_t best_fitness;
} ee_openes_t;

typedef int32_t (*ee_openes_fitness_fn)(void *ctx, const int8_t *genome, uint32_t generation, uint32_t individual);

#define EE_OPENES_MEM_BYTES(P, n) (8u * (size_t)(n) + 4u * (size_t)(P) + 4u * ((size_t)(P) / 2u) + EE_ALIGN4(n))

int ee_openes_init(ee_openes_t *o, const ee_openes_cfg_t *cfg, const ee_mlp_t *model, void *mem, size_t mem_bytes);
/* As ee_openes_init, but the mean starts at a given int8 genome (mean = genome << 8, momentum 0): on-device
 * adaptation of an imported / deployed model. The Python twin sets state.arrays['mean'] the same way. */
int ee_openes_init_from(ee_openes_t *o, const ee_openes_cfg_t *cfg, const ee_mlp_t *model, void *mem,
                        size_t mem_bytes, const int8_t *genome);
/* Offspring i of this generation into out (2k: c + e_k, 2k+1: c - e_k). */
void ee_openes_offspring(const ee_openes_t *o, uint32_t individual, int8_t *out);
int ee_openes_step(ee_openes_t *o, ee_openes_fitness_fn fitness, void *ctx);
void ee_openes_best(const ee_openes_t *o, int8_t *out);

/* ------------------------------------------------------------------ classification task helper */
typedef struct {
    const ee_mlp_t *model;      /* dims, formats, LUT of the evolved network */
    const int8_t *X;            /* [n_samples][dims[0]] int8 Q(x_frac) */
    const uint8_t *y;           /* labels */
    uint32_t n_samples;
    uint16_t n_classes;
    uint16_t per_class;         /* > 0: GENREG batches (classes shuffled, per_class draws each) */
    uint16_t batch;             /* per_class == 0: uniform batch of this many draws */
    uint32_t seed;
    const int32_t *gumbel;      /* int32[256] Gumbel table (problem.gumbel_lut(logit_frac)) or NULL: argmax */
    uint16_t *members;          /* n_samples: indices sorted by class (stable) */
    uint16_t starts[256], counts[256];
    uint16_t *batch_idx;        /* batch entries */
    uint32_t batch_generation;  /* generation of batch_idx (UINT32_MAX: none) */
    int32_t *logits;            /* dims[n_layers] */
    int8_t *scratch;            /* EE_MLP_SCRATCH_BYTES(max_hidden) */
} ee_cls_task_t;

/* Fills members/starts/counts from the labels; -1 on a label >= n_classes or an empty class. */
int ee_cls_task_init(ee_cls_task_t *t);
/* Training indices of a generation (problem.ClassificationProblem.batch). */
void ee_cls_batch(ee_cls_task_t *t, uint32_t generation);
uint32_t ee_cls_batch_len(const ee_cls_task_t *t);
/* Per-sample correctness of one genome on the generation's batch; returns the number correct. */
uint32_t ee_cls_eval(ee_cls_task_t *t, const int8_t *genome, uint32_t generation, uint32_t individual,
                     uint8_t *correct);
/* Argmax accuracy (correct count) of a genome on samples [0, n) of X / y. */
uint32_t ee_cls_count_correct(const ee_cls_task_t *t, const int8_t *genome, const int8_t *X, const uint8_t *y,
                              uint32_t n);
void ee_cls_genreg_eval(void *task, const int8_t *genome, uint32_t generation, uint32_t individual,
                        uint8_t *correct);
int32_t ee_cls_openes_eval(void *task, const int8_t *genome, uint32_t generation, uint32_t individual);

#ifdef __cplusplus
}
#endif

#endif /* EDGE_EVO_EVOLVE_H */
