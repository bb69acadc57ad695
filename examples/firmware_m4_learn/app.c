/*
 * On-device learning on an emulated Cortex-M4: an int8 64-16-10 MLP evolves on 8x8 digits that are
 * compiled into flash as uint8 pixels (learn_data.h, written by run.py). The firmware quantizes the
 * pixels itself, runs GENREG (or OpenES) generation after generation with edge_evo_evolve, and prints
 * the held-out accuracy of its best genome as it improves:
 *     "gen g fitness test_correct n_test"   and at the end   "final fnv(best genome) test_correct"
 * run.py runs the same generations with the Python strategies and requires identical lines.
 */
#include "edge_evo_evolve.h"
#include "ee_port.h"
#include "learn_data.h"

typedef char ex_assert_generations[EX_GENS >= 1u ? 1 : -1];
#define B_MAX (EX_GENREG_B > EX_OPENES_B ? EX_GENREG_B : EX_OPENES_B)

static ee_tx_t tx;
static int8_t x_train[EX_N_TRAIN * EX_N_IN];
static int8_t x_test[EX_N_TEST * EX_N_IN];
static uint16_t members[EX_N_TRAIN];
static uint16_t batch_idx[B_MAX];
static int32_t logits[EX_N_OUT];
static int8_t scratch[EE_MLP_SCRATCH_BYTES(EX_MAX_HIDDEN) + 1u];
static const ee_mlp_t model = EX_MODEL;
static ee_cls_task_t task;

#if EX_STRATEGY == 0
static uint32_t mem[EE_GENREG_MEM_BYTES(EX_GENREG_P, EX_GENREG_K, EX_N_PARAMS, EX_GENREG_B) / 4u + 1u];
static ee_genreg_t evo;
#else
static uint32_t mem[EE_OPENES_MEM_BYTES(EX_OPENES_P, EX_N_PARAMS) / 4u + 1u];
static ee_openes_t evo;
static int8_t best[EX_N_PARAMS];
#endif

static void quantize(const uint8_t *px, int8_t *q, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        q[i] = ee_pixel_q7(px[i]);
    }
}

static void report(const char *tag, uint32_t a, int32_t b, uint32_t c, uint32_t d)
{
    ee_tx_str(&tx, tag);
    ee_tx_sp_u32(&tx, a);
    ee_tx_sp_i32(&tx, b);
    ee_tx_sp_u32(&tx, c);
    ee_tx_sp_u32(&tx, d);
    ee_tx_endl(&tx);
}

int main(void)
{
    uint32_t gen;
    const int8_t *g = NULL;
    int32_t fit = 0;
    quantize(ex_train_px, x_train, EX_N_TRAIN * EX_N_IN);
    quantize(ex_test_px, x_test, EX_N_TEST * EX_N_IN);
    task.model = &model;
    task.X = x_train;
    task.y = ex_train_y;
    task.n_samples = EX_N_TRAIN;
    task.n_classes = EX_N_OUT;
    task.seed = EX_SEED;
    task.members = members;
    task.batch_idx = batch_idx;
    task.logits = logits;
    task.scratch = scratch;
#if EX_STRATEGY == 0
    {
        static const ee_genreg_cfg_t cfg = EX_GENREG_CFG;
        task.per_class = EX_PER_CLASS;
        task.gumbel = ex_gumbel;   /* GENREG trains on softmax-sampled predictions */
        if (ee_cls_task_init(&task) != 0 || ee_genreg_init(&evo, &cfg, &model, mem, sizeof mem) != 0) {
            return 1;
        }
    }
#else
    {
        static const ee_openes_cfg_t cfg = EX_OPENES_CFG;
        task.per_class = 0u;
        task.batch = EX_OPENES_B;
        task.gumbel = NULL;
        if (ee_cls_task_init(&task) != 0 || ee_openes_init(&evo, &cfg, &model, mem, sizeof mem) != 0) {
            return 1;
        }
    }
#endif
    for (gen = 0; gen < EX_GENS; ++gen) {
#if EX_STRATEGY == 0
        if (ee_genreg_step(&evo, ee_cls_genreg_eval, &task) != 0) {
            return 2;
        }
        g = ee_genreg_best(&evo);
        fit = evo.best_trust;
#else
        ee_openes_step(&evo, ee_cls_openes_eval, &task);
        ee_openes_best(&evo, best);
        g = best;
        fit = evo.best_fitness;
#endif
        if ((gen + 1u) % EX_REPORT_EVERY == 0u || gen + 1u == EX_GENS) {
            report("gen", gen, fit, ee_cls_count_correct(&task, g, x_test, ex_test_y, EX_N_TEST), EX_N_TEST);
        }
    }
    ee_tx_str(&tx, "final");
    ee_tx_sp_u32(&tx, ee_fnv1a(g, EX_N_PARAMS));
    ee_tx_sp_u32(&tx, ee_cls_count_correct(&task, g, x_test, ex_test_y, EX_N_TEST));
    ee_tx_endl(&tx);
    return 0;
}
