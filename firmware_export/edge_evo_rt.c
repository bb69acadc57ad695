/*
 * edge_evo C runtime: int8 MLP inference (docs/numerics.md, "Layer (int8 MLP)"):
 *   acc[i] = sum_j W[i][j] x[j] + b[i] * 2^(w_frac + in_frac - b_frac)      (int32)
 *   z[i]   = sat8(rshift_round(acc[i], w_frac + in_frac - z_frac));  h[i] = LUT[z[i] + 128]
 * The last layer returns acc as int32 logits.
 */
#include "edge_evo_rt.h"

size_t ee_mlp_n_params(const ee_mlp_t *m)
{
    size_t n = 0;
    uint16_t l;
    for (l = 0; l < m->n_layers; ++l) {
        n += ((size_t)m->dims[l] + 1u) * (size_t)m->dims[l + 1];
    }
    return n;
}

size_t ee_mlp_max_hidden(const ee_mlp_t *m)
{
    size_t best = 0;
    uint16_t l;
    for (l = 1; l < m->n_layers; ++l) {
        if (m->dims[l] > best) {
            best = m->dims[l];
        }
    }
    return best;
}

/* Bias alignment by multiplication: << of a negative value is undefined in C99. */
static int32_t bias_acc(int8_t b, unsigned bias_shift)
{
    return (int32_t)b * ((int32_t)1 << bias_shift);
}

static int32_t dense_acc(const int8_t *w, int32_t acc, const int8_t *x, uint16_t n_in)
{
    uint16_t j;
    for (j = 0; j < n_in; ++j) {
        acc += (int32_t)w[j] * (int32_t)x[j];
    }
    return acc;
}

#if defined(__ARM_FEATURE_DSP)
/*
 * ARMv7E-M / ARMv8-M DSP path (Cortex-M4/M7/M33/M55), the idea of CMSIS-NN's s8 fully-connected
 * kernels written afresh: one 32-bit load fetches 4 int8 values, SXTB16 widens bytes 0 and 2 into
 * two int16 lanes and SXTB16 ROR #8 bytes 1 and 3, and SMLAD adds both lane products to an int32
 * accumulator. Pairing is the same for weights and inputs, so each SMLAD adds w0 x0 + w2 x2 or
 * w1 x1 + w3 x3: the same products summed in int32, hence bit-identical with the portable loop
 * (no partial sum can overflow: |sum| <= 127 * 127 * n_in < 2^31 for every uint16 n_in).
 * Two output rows share every widened input word, so 8 MACs cost 3 loads, 6 SXTB16 and 4 SMLAD.
 */
/* 4 MACs into each of s0 (row w0) and s1 (row w1) from the 4 inputs at x; advances the 3 pointers.
 * One asm block rather than ACLE intrinsics: gcc 12 neither folds a rotate into SXTB16's ROR #8 operand
 * nor keeps this loop's pointers in registers at -Os (it spills, ~3 instructions per MAC), while the
 * block is 13 instructions for 8 MACs at every optimisation level. Unaligned LDR is fine on M-profile
 * cores with DSP (rows of an odd-width layer start at any byte); "memory": it reads the buffers. */
#define EE_QUAD2()                                                                              \
    do {                                                                                        \
        uint32_t xv_, wa_, wb_, xe_, xo_;                                                       \
        __asm__("ldr %[xv], [%[x]], #4\n\t"                                                     \
                "ldr %[wa], [%[w0]], #4\n\t"                                                    \
                "ldr %[wb], [%[w1]], #4\n\t"                                                    \
                "sxtb16 %[xe], %[xv]\n\t"                                                       \
                "sxtb16 %[xo], %[xv], ror #8\n\t"                                               \
                "sxtb16 %[xv], %[wa]\n\t"                                                       \
                "smlad %[s0], %[xv], %[xe], %[s0]\n\t"                                          \
                "sxtb16 %[xv], %[wa], ror #8\n\t"                                               \
                "smlad %[s0], %[xv], %[xo], %[s0]\n\t"                                          \
                "sxtb16 %[xv], %[wb]\n\t"                                                       \
                "smlad %[s1], %[xv], %[xe], %[s1]\n\t"                                          \
                "sxtb16 %[xv], %[wb], ror #8\n\t"                                               \
                "smlad %[s1], %[xv], %[xo], %[s1]"                                               \
                : [s0] "+r"(s0), [s1] "+r"(s1), [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1),      \
                  [xv] "=&r"(xv_), [wa] "=&r"(wa_), [wb] "=&r"(wb_), [xe] "=&r"(xe_), [xo] "=&r"(xo_) \
                :                                                                               \
                : "memory");                                                                    \
    } while (0)

/* acc[0] += W row w0 . x and acc[1] += W row w1 . x, 8 inputs per iteration (loop overhead 3
 * instructions per 16 MACs). Not inlined: alone, the loop keeps its 2 accumulators, 3 pointers and
 * temporaries in registers (inlined into dense_layer, gcc 12 -Os spills them to the stack). */
static __attribute__((noinline)) void dense_acc2(const int8_t *w0, const int8_t *w1, const int8_t *x,
                                                 uint16_t n_in, int32_t acc[2])
{
    int32_t s0 = acc[0], s1 = acc[1];
    uint32_t n8 = (uint32_t)n_in >> 3;
    uint16_t rest = (uint16_t)(n_in & 3u);
    if (n8 != 0u) {
        do {
            EE_QUAD2();
            EE_QUAD2();
        } while (--n8 != 0u);
    }
    if ((n_in & 4u) != 0u) {
        EE_QUAD2();
    }
    acc[0] = dense_acc(w0, s0, x, rest);
    acc[1] = dense_acc(w1, s1, x, rest);
}
#define EE_ROWS 2u
#else
#define EE_ROWS 1u
#endif

/* One layer: int32 logits (last layer) or requantized, LUT-activated int8 outputs. */
static void dense_layer(const ee_mlp_t *m, const int8_t *w, const int8_t *b, unsigned bias_shift,
                        const int8_t *in, uint16_t n_in, uint16_t n_out, int32_t *logits, int8_t *out,
                        unsigned out_shift)
{
    uint16_t i = 0;
    int32_t acc[2];
#if EE_ROWS == 2u
    for (; (uint32_t)i + 1u < n_out; i = (uint16_t)(i + 2u)) {
        uint16_t r;
        acc[0] = bias_acc(b[i], bias_shift);
        acc[1] = bias_acc(b[i + 1u], bias_shift);
        dense_acc2(w + (size_t)i * n_in, w + (size_t)(i + 1u) * n_in, in, n_in, acc);
        for (r = 0; r < 2u; ++r) {
            if (logits != NULL) {
                logits[i + r] = acc[r];
            } else {
                out[i + r] = ee_lut_apply(m->lut, ee_requantize(acc[r], out_shift));
            }
        }
    }
#endif
    for (; i < n_out; ++i) {
        acc[0] = dense_acc(w + (size_t)i * n_in, bias_acc(b[i], bias_shift), in, n_in);
        if (logits != NULL) {
            logits[i] = acc[0];
        } else {
            out[i] = ee_lut_apply(m->lut, ee_requantize(acc[0], out_shift));
        }
    }
}

int ee_mlp_forward(const ee_mlp_t *m, const int8_t *x, int32_t *logits, int8_t *scratch)
{
    const int8_t *p;
    const int8_t *in = x;
    size_t half;
    uint16_t last;
    uint16_t l;

    if (m == NULL || x == NULL || logits == NULL || m->params == NULL || m->dims == NULL || m->n_layers < 1u
        || (m->n_layers > 1u && (scratch == NULL || m->lut == NULL))
        || (unsigned)m->w_frac + m->x_frac < m->b_frac
        || (m->n_layers > 1u && ((unsigned)m->w_frac + m->x_frac < m->z_frac
                                 || (unsigned)m->w_frac + m->h_frac < m->z_frac
                                 || (unsigned)m->w_frac + m->h_frac < m->b_frac))) {
        return EE_ERR_ARG;
    }
    p = m->params;
    half = ee_mlp_max_hidden(m);
    last = (uint16_t)(m->n_layers - 1u);

    for (l = 0; l < m->n_layers; ++l) {
        uint16_t n_in = m->dims[l], n_out = m->dims[l + 1];
        unsigned in_frac = (l == 0) ? m->x_frac : m->h_frac;
        unsigned bias_shift = (unsigned)m->w_frac + in_frac - m->b_frac;
        unsigned out_shift = (unsigned)m->w_frac + in_frac - m->z_frac;
        const int8_t *w = p;
        const int8_t *b = p + (size_t)n_in * n_out;
        p = b + n_out;
        if (l == last) {
            dense_layer(m, w, b, bias_shift, in, n_in, n_out, logits, NULL, out_shift);
        } else {
            int8_t *out = scratch + ((l & 1u) ? half : 0u);
            dense_layer(m, w, b, bias_shift, in, n_in, n_out, NULL, out, out_shift);
            in = out;
        }
    }
    return ee_argmax(logits, m->dims[m->n_layers]);
}

int ee_argmax(const int32_t *v, size_t n)
{
    size_t i, best = 0;
    for (i = 1; i < n; ++i) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return (int)best;
}
