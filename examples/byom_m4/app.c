/*
 * Bring your own model on an emulated Cortex-M4 (issue 9): the GENREG gen-600 genome, imported and quantized
 * by edge_evo, exported to C (byom.h / byom.c) and run by this firmware. Images and labels are streamed in
 * from the raw MNIST IDX files on the host through ARM semihosting file calls (SYS_OPEN / SYS_SEEK / SYS_READ /
 * SYS_CLOSE), so nothing of the data set is compiled into flash. run.py writes byom_cfg.h (paths, counts,
 * the OpenES configuration) and diffs the transcript with the Python kernels.
 *
 * BYOM_MODE 0 (classify): the first BYOM_N test images; prints
 *     "digit d correct total" (d = 0..9), "total correct n", "hash fnv1a(predicted labels as bytes)"
 * BYOM_MODE 1 (adapt): on-device adaptation of the read-out layer (W2, b2) with OpenES whose mean starts at
 *     the imported genome (ee_openes_init_from). The hidden layer stays frozen in flash, so the device computes
 *     the hidden activations of its BYOM_NTR training images once (int8, 64 bytes each, in RAM) and every
 *     offspring is a 64-10 read-out on them: the same logits as the full model (h_frac = x_frac = 7). Fitness:
 *     sum over a uniform batch of the logit margin (label minus best other), clipped to +-BYOM_MARGIN. Prints
 *     "heldout 0 correct n" before, "gen g best_fitness fnv(mean genome)" every BYOM_REPORT generations,
 *     "heldout 1 correct n" after (held-out test images streamed through the hidden layer again) and
 *     "final fnv(read-out genome)".
 */
#include "byom.h"
#include "byom_cfg.h"
#include "edge_evo_evolve.h"
#include "ee_port.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_READ 0x06
#define SYS_SEEK 0x0A
#define OPEN_RB 1u
#define N_PIX 784u
#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define CHUNK 8u

typedef char byom_assert_dims[(BYOM_N_INPUTS == N_PIX && BYOM_N_LAYERS == 2 && BYOM_N_OUTPUTS == 10) ? 1 : -1];

static ee_tx_t tx;
static uint8_t px[CHUNK * N_PIX];
static uint8_t lab[CHUNK];
static int8_t x[N_PIX];

static int semihost(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static uint32_t str_len(const char *s)
{
    uint32_t n = 0;
    while (s[n] != '\0') {
        ++n;
    }
    return n;
}

static int sh_open(const char *path)
{
    uint32_t a[3];
    a[0] = (uint32_t)(uintptr_t)path;
    a[1] = OPEN_RB;
    a[2] = str_len(path);
    return semihost(SYS_OPEN, a);
}

static void sh_close(int h)
{
    uint32_t a[1];
    a[0] = (uint32_t)h;
    (void)semihost(SYS_CLOSE, a);
}

/* Exactly n bytes at byte offset pos, else -1 (SYS_READ returns the number of bytes NOT read). */
static int sh_read_at(int h, uint32_t pos, void *buf, uint32_t n)
{
    uint32_t a[3];
    a[0] = (uint32_t)h;
    a[1] = pos;
    if (semihost(SYS_SEEK, a) != 0) {
        return -1;
    }
    a[1] = (uint32_t)(uintptr_t)buf;
    a[2] = n;
    return semihost(SYS_READ, a) == 0 ? 0 : -1;
}

static uint32_t be32(const uint8_t *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | (uint32_t)b[3];
}

/* Open an IDX image / label pair and check headers; returns the image count or 0. */
static uint32_t idx_open(const char *images, const char *labels, int *hi, int *hl)
{
    uint8_t hdr[16];
    uint32_t n;
    *hi = sh_open(images);
    *hl = sh_open(labels);
    if (*hi < 0 || *hl < 0 || sh_read_at(*hi, 0u, hdr, 16u) != 0 || be32(hdr) != IDX_IMAGES_MAGIC ||
        be32(hdr + 8) != 28u || be32(hdr + 12) != 28u) {
        return 0u;
    }
    n = be32(hdr + 4);
    if (sh_read_at(*hl, 0u, hdr, 8u) != 0 || be32(hdr) != IDX_LABELS_MAGIC || be32(hdr + 4) != n) {
        return 0u;
    }
    return n;
}

/* Images [first, first + n) of an open pair into px / lab (n <= CHUNK). */
static int idx_read(int hi, int hl, uint32_t first, uint32_t n)
{
    if (sh_read_at(hi, 16u + first * N_PIX, px, n * N_PIX) != 0 || sh_read_at(hl, 8u + first, lab, n) != 0) {
        return -1;
    }
    return 0;
}

static void quantize(const uint8_t *p)
{
    uint32_t i;
    for (i = 0; i < N_PIX; ++i) {
        x[i] = ee_pixel_q7(p[i]);
    }
}

static void line3(const char *tag, uint32_t a, uint32_t b, uint32_t c)
{
    ee_tx_str(&tx, tag);
    ee_tx_sp_u32(&tx, a);
    ee_tx_sp_u32(&tx, b);
    ee_tx_sp_u32(&tx, c);
    ee_tx_endl(&tx);
}

#if BYOM_MODE == 0
static int32_t logits[BYOM_N_OUTPUTS];

int main(void)
{
    uint32_t correct[10] = {0}, total[10] = {0}, n, i, j, ok = 0, hash = 2166136261u;
    int hi, hl;
    if (idx_open(BYOM_IMAGES, BYOM_LABELS, &hi, &hl) < BYOM_N) {
        return 3;
    }
    for (i = 0; i < BYOM_N; i += n) {
        n = BYOM_N - i < CHUNK ? BYOM_N - i : CHUNK;
        if (idx_read(hi, hl, i, n) != 0) {
            return 4;
        }
        for (j = 0; j < n; ++j) {
            int pred;
            quantize(px + j * N_PIX);
            pred = byom_predict(x, logits);
            hash = (hash ^ (uint32_t)pred) * 16777619u;
            if (lab[j] > 9u) {
                return 5;
            }
            total[lab[j]]++;
            if (pred == (int)lab[j]) {
                correct[lab[j]]++;
                ok++;
            }
        }
    }
    sh_close(hi);
    sh_close(hl);
    for (i = 0; i < 10u; ++i) {
        line3("digit", i, correct[i], total[i]);
    }
    ee_tx_str(&tx, "total");
    ee_tx_sp_u32(&tx, ok);
    ee_tx_sp_u32(&tx, BYOM_N);
    ee_tx_endl(&tx);
    ee_tx_str(&tx, "hash");
    ee_tx_sp_u32(&tx, hash);
    ee_tx_endl(&tx);
    return 0;
}

#else /* BYOM_MODE == 1: adaptation of the read-out */
#define NH BYOM_MAX_HIDDEN
#define N_RO ((NH + 1u) * BYOM_N_OUTPUTS)
#define OFF_RO (N_PIX * NH + NH)   /* W2 starts after W1, b1 in the flat genome */

static const uint16_t ro_dims[2] = {NH, BYOM_N_OUTPUTS};
static const ee_mlp_t ro_model = {1u, ro_dims, NULL, byom_lut, BYOM_W_FRAC, BYOM_B_FRAC, BYOM_H_FRAC,
                                  BYOM_Z_FRAC, BYOM_H_FRAC};
static int8_t feats[BYOM_NTR * NH];
static uint8_t ytr[BYOM_NTR];
static uint16_t batch_idx[BYOM_BATCH];
static int32_t logits[BYOM_N_OUTPUTS];
static int8_t h[NH];
static int8_t ro[N_RO];
static uint32_t mem[EE_OPENES_MEM_BYTES(BYOM_P, N_RO) / 4u + 1u];
static ee_openes_t evo;
static uint32_t batch_gen = 0xFFFFFFFFu;

/* Frozen hidden layer of the exported model (weights in flash): h = LUT[sat8(rshift_round(W1 x + b1', s))]. */
static void hidden(const int8_t *xq, int8_t *out)
{
    const int8_t *W = byom_params, *b = byom_params + N_PIX * NH;
    const unsigned bshift = BYOM_W_FRAC + BYOM_X_FRAC - BYOM_B_FRAC, zshift = BYOM_W_FRAC + BYOM_X_FRAC - BYOM_Z_FRAC;
    uint32_t i, j;
    for (i = 0; i < NH; ++i) {
        int32_t acc = (int32_t)b[i] * (1 << bshift);
        const int8_t *w = W + i * N_PIX;
        for (j = 0; j < N_PIX; ++j) {
            acc += (int32_t)w[j] * (int32_t)xq[j];
        }
        out[i] = ee_lut_apply(byom_lut, ee_requantize(acc, zshift));
    }
}

/* Correct held-out images [BYOM_HOLD0, BYOM_HOLD0 + BYOM_NHOLD) of the test file with read-out ro. */
static int heldout(uint32_t *ok)
{
    int hi, hl;
    uint32_t i, j, n;
    ee_mlp_t m = ro_model;
    m.params = ro;
    *ok = 0u;
    if (idx_open(BYOM_IMAGES, BYOM_LABELS, &hi, &hl) < BYOM_HOLD0 + BYOM_NHOLD) {
        return -1;
    }
    for (i = 0; i < BYOM_NHOLD; i += n) {
        n = BYOM_NHOLD - i < CHUNK ? BYOM_NHOLD - i : CHUNK;
        if (idx_read(hi, hl, BYOM_HOLD0 + i, n) != 0) {
            return -1;
        }
        for (j = 0; j < n; ++j) {
            quantize(px + j * N_PIX);
            hidden(x, h);
            *ok += (uint32_t)(ee_mlp_forward(&m, h, logits, NULL) == (int)lab[j]);
        }
    }
    sh_close(hi);
    sh_close(hl);
    return 0;
}

static int32_t fitness(void *ctx, const int8_t *genome, uint32_t generation, uint32_t individual)
{
    ee_mlp_t m = ro_model;
    int32_t f = 0;
    uint32_t b, c;
    (void)ctx;
    (void)individual;
    if (generation != batch_gen) {   /* problem.batch: uniform draws from key(seed, g, PURPOSE_BATCH) */
        uint32_t k = ee_key(BYOM_SEED, generation, EE_PURPOSE_BATCH);
        for (b = 0; b < BYOM_BATCH; ++b) {
            batch_idx[b] = (uint16_t)ee_bounded(ee_u32(k, b), BYOM_NTR);
        }
        batch_gen = generation;
    }
    m.params = genome;
    for (b = 0; b < BYOM_BATCH; ++b) {
        uint32_t s = batch_idx[b], y = ytr[s];
        int32_t other = INT32_MIN, mg;
        (void)ee_mlp_forward(&m, feats + s * NH, logits, NULL);
        for (c = 0; c < BYOM_N_OUTPUTS; ++c) {
            if (c != y && logits[c] > other) {
                other = logits[c];
            }
        }
        mg = logits[y] - other;
        f += mg > BYOM_MARGIN ? BYOM_MARGIN : (mg < -BYOM_MARGIN ? -BYOM_MARGIN : mg);
    }
    return f;
}

int main(void)
{
    static const ee_openes_cfg_t cfg = BYOM_OPENES_CFG;
    uint32_t i, j, n, ok, gen;
    int hi, hl;
    for (i = 0; i < N_RO; ++i) {
        ro[i] = byom_params[OFF_RO + i];
    }
    if (heldout(&ok) != 0) {
        return 3;
    }
    line3("heldout", 0u, ok, BYOM_NHOLD);
    if (idx_open(BYOM_TRAIN_IMAGES, BYOM_TRAIN_LABELS, &hi, &hl) < BYOM_NTR) {
        return 3;
    }
    for (i = 0; i < BYOM_NTR; i += n) {
        n = BYOM_NTR - i < CHUNK ? BYOM_NTR - i : CHUNK;
        if (idx_read(hi, hl, i, n) != 0) {
            return 4;
        }
        for (j = 0; j < n; ++j) {
            quantize(px + j * N_PIX);
            hidden(x, feats + (i + j) * NH);
            ytr[i + j] = lab[j];
        }
    }
    sh_close(hi);
    sh_close(hl);
    if (ee_openes_init_from(&evo, &cfg, &ro_model, mem, sizeof mem, ro) != 0) {
        return 1;
    }
    for (gen = 0; gen < BYOM_GENS; ++gen) {
        ee_openes_step(&evo, fitness, NULL);
        if ((gen + 1u) % BYOM_REPORT == 0u || gen + 1u == BYOM_GENS) {
            ee_openes_best(&evo, ro);
            ee_tx_str(&tx, "gen");
            ee_tx_sp_u32(&tx, gen);
            ee_tx_sp_i32(&tx, evo.best_fitness);
            ee_tx_sp_u32(&tx, ee_fnv1a(ro, N_RO));
            ee_tx_endl(&tx);
        }
    }
    ee_openes_best(&evo, ro);
    if (heldout(&ok) != 0) {
        return 3;
    }
    line3("heldout", 1u, ok, BYOM_NHOLD);
    ee_tx_str(&tx, "final");
    ee_tx_sp_u32(&tx, ee_fnv1a(ro, N_RO));
    ee_tx_endl(&tx);
    return 0;
}
#endif
