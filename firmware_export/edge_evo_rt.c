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
static int32_t dense_acc(const int8_t *w, int8_t b, unsigned bias_shift, const int8_t *x, uint16_t n_in)
{
    int32_t acc = (int32_t)b * ((int32_t)1 << bias_shift);
    uint16_t j;
    for (j = 0; j < n_in; ++j) {
        acc += (int32_t)w[j] * (int32_t)x[j];
    }
    return acc;
}

int ee_mlp_forward(const ee_mlp_t *m, const int8_t *x, int32_t *logits, int8_t *scratch)
{
    const int8_t *p = m->params;
    const int8_t *in = x;
    size_t half = ee_mlp_max_hidden(m);
    uint16_t last = (uint16_t)(m->n_layers - 1u);
    uint16_t l, i;

    for (l = 0; l < m->n_layers; ++l) {
        uint16_t n_in = m->dims[l], n_out = m->dims[l + 1];
        unsigned in_frac = (l == 0) ? m->x_frac : m->h_frac;
        unsigned bias_shift = (unsigned)m->w_frac + in_frac - m->b_frac;
        const int8_t *w = p;
        const int8_t *b = p + (size_t)n_in * n_out;
        p = b + n_out;
        if (l == last) {
            for (i = 0; i < n_out; ++i) {
                logits[i] = dense_acc(w + (size_t)i * n_in, b[i], bias_shift, in, n_in);
            }
        } else {
            unsigned out_shift = (unsigned)m->w_frac + in_frac - m->z_frac;
            int8_t *out = scratch + ((l & 1u) ? half : 0u);
            for (i = 0; i < n_out; ++i) {
                int32_t acc = dense_acc(w + (size_t)i * n_in, b[i], bias_shift, in, n_in);
                out[i] = ee_lut_apply(m->lut, ee_requantize(acc, out_shift));
            }
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
