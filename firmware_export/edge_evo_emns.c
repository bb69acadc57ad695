/*
 * EMNS integer inference and `select` evolution (seed 000; equations in edge_evo/models/emns.py), the C twin
 * of edge_evo/kernels/emns.py and of EMNS.ask / EMNS.tell (variant "select", mode "int8").
 * Sums over synapses are int32 (bounded by EE_EMNS_MAX_FAN_IN, as in Python); products with evolved
 * coefficients and the mutation multipliers are int64 (SMULL on Cortex-M3+, __aeabi_lmul on M0).
 */
#include "edge_evo_emns.h"

#define ROW(m, l, c) ((m)->layout[(size_t)(l) * EE_EMNS_LAYOUT_COLS + (c)])

static const unsigned act_shift[5] = {EE_EMNS_VAL_FRAC + 7 - EE_EMNS_Y_FRAC, EE_EMNS_VAL_FRAC + 7 - EE_EMNS_Y_FRAC,
                                      EE_EMNS_VAL_FRAC + 4 - EE_EMNS_Y_FRAC, EE_EMNS_VAL_FRAC + 4 - EE_EMNS_Y_FRAC,
                                      EE_EMNS_VAL_FRAC + 4 - EE_EMNS_Y_FRAC};

/* (a + 2^(s-1)) >> s in int64 (kernels.emns._rsr); |a| stays far below 2^62 for every call here. */
static int64_t rsr64(int64_t a, unsigned s)
{
    return (a + ((int64_t)1 << (s - 1u))) >> s;
}

static int32_t clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

void ee_emns_build_luts(const ee_emns_model_t *m, const int16_t *values, int8_t *luts)
{
    uint16_t l;
    for (l = 0; l < m->n_layers; ++l) {
        uint32_t no = ROW(m, l, 1), oc = ROW(m, l, 3), noff = ROW(m, l, 8), o;
        for (o = 0; o < no; ++o) {
            const int16_t *b = values + oc + 5u * o;
            int8_t *out = luts + (size_t)(noff + o) * 256u;
            unsigned q, k;
            for (q = 0; q < 256u; ++q) {
                int64_t acc = 0;
                for (k = 0; k < 5u; ++k) {
                    acc += rsr64((int64_t)b[k] * (int64_t)m->act_t[k * 256u + q], act_shift[k]);
                }
                out[q] = (int8_t)clamp64(acc, -EE_EMNS_Y_MAX, EE_EMNS_Y_MAX);
            }
        }
    }
}

/* One neuron's aggregation z (Q11, clipped to +-5) over its active synapses. */
static int64_t aggregate(const ee_emns_model_t *m, const int16_t *values, uint16_t l, uint32_t o, const int8_t *in)
{
    uint32_t ni = ROW(m, l, 0), oa = ROW(m, l, 2), ow = ROW(m, l, 4), ob = ROW(m, l, 5), og = ROW(m, l, 6);
    const uint8_t *cm = m->cmask + ROW(m, l, 7) + o * ni;
    uint32_t base = o * ni, i;
    int32_t s_lin = 0, s_quad = 0, s_sqrt = 0, s_sin = 0, s_gau = 0;
    const int16_t *a = values + oa + 5u * o;
    int64_t z;
    for (i = 0; i < ni; ++i) {
        int32_t gw, s, q;
        if (cm[i] == 0u) {
            continue;
        }
        gw = ((int32_t)values[og + base + i] * (int32_t)values[ow + base + i] + (1 << (EE_EMNS_VAL_FRAC - 1)))
             >> EE_EMNS_VAL_FRAC;
        s = ((gw * (int32_t)in[i] + (1 << (EE_EMNS_Y_FRAC - 1))) >> EE_EMNS_Y_FRAC) + (int32_t)values[ob + base + i];
        s = clamp32(s, -EE_EMNS_VAL_MAX, EE_EMNS_VAL_MAX);
        s_lin += s;
        s_quad += (s * s + (1 << (EE_EMNS_VAL_FRAC - 1))) >> EE_EMNS_VAL_FRAC;
        q = clamp32((s + (1 << (EE_EMNS_VAL_FRAC - 3 - 1))) >> (EE_EMNS_VAL_FRAC - 3), -127, 127) + 128;
        s_sqrt += m->agg_t[q];
        s_sin += m->agg_t[256 + q];
        s_gau += m->agg_t[512 + q];
    }
    z = rsr64((int64_t)a[0] * s_lin, EE_EMNS_VAL_FRAC) + rsr64((int64_t)a[1] * s_quad, EE_EMNS_VAL_FRAC)
        + rsr64((int64_t)a[2] * s_sqrt, 5) + rsr64((int64_t)a[3] * s_sin, 7) + rsr64((int64_t)a[4] * s_gau, 7);
    return clamp64(z, -EE_EMNS_Z_MAX, EE_EMNS_Z_MAX);
}

void ee_emns_forward(const ee_emns_model_t *m, const int16_t *values, const int8_t *luts, const int8_t *x,
                     int8_t *y, int8_t *scratch)
{
    const int8_t *in = x;
    uint16_t l;
    for (l = 0; l < m->n_layers; ++l) {
        uint32_t no = ROW(m, l, 1), noff = ROW(m, l, 8), o;
        int8_t *out = (l + 1u == m->n_layers) ? y : scratch + ((l & 1u) ? m->max_width : 0u);
        for (o = 0; o < no; ++o) {
            int32_t zq;
            if (m->nmask[noff + o] == 0u) {
                out[o] = 0;
                continue;
            }
            /* |z| <= 10240 after the clip, so zq is in [-80, 80]: no saturation needed */
            zq = (int32_t)rsr64(aggregate(m, values, l, o, in), EE_EMNS_VAL_FRAC - EE_EMNS_Y_FRAC);
            out[o] = luts[(size_t)(noff + o) * 256u + (size_t)(zq + 128)];
        }
        in = out;
    }
}

/* Is flat parameter j of layer l active? agg/act follow the neuron mask, w/bias/gain the connection mask. */
static int param_active(const ee_emns_model_t *m, uint16_t l, uint32_t j)
{
    uint32_t no = ROW(m, l, 1), oa = ROW(m, l, 2), ow = ROW(m, l, 4), nc = ROW(m, l, 0) * no;
    if (j < ow) {
        return m->nmask[ROW(m, l, 8) + ((j - oa) % (5u * no)) / 5u] != 0u;
    }
    return m->cmask[ROW(m, l, 7) + (j - ow) % nc] != 0u;
}

void ee_emns_mutate(const ee_emns_model_t *m, int16_t *values, uint8_t *resist, uint32_t key, int32_t mu_q,
                    int32_t val_k, int32_t res_k, int32_t r_max_q)
{
    uint16_t l;
    for (l = 0; l < m->n_layers; ++l) {
        uint32_t end = ROW(m, l, 6) + ROW(m, l, 0) * ROW(m, l, 1), j;
        for (j = ROW(m, l, 2); j < end; ++j) {
            int64_t w, mv, mr, d, v, r;
            uint32_t h0, h1, h2, h3;
            if (!param_active(m, l, j)) {
                continue;
            }
            w = 256 - (int64_t)resist[j];
            h0 = ee_u32(key, 4u * j);
            h1 = ee_u32(key, 4u * j + 1u);
            h2 = ee_u32(key, 4u * j + 2u);
            h3 = ee_u32(key, 4u * j + 3u);
            /* >> floors: the sub-LSB remainder plus a uniform word is stochastic rounding */
            mv = rsr64((int64_t)mu_q * w * (int64_t)val_k, 32);
            d = ((int64_t)ee_gauss(h0) * mv + (int64_t)(h1 & 0xFFFFu)) >> 16;
            v = clamp64((int64_t)values[j] + d, -EE_EMNS_VAL_MAX, EE_EMNS_VAL_MAX);
            values[j] = (int16_t)v;
            mr = rsr64((int64_t)mu_q * w * (int64_t)res_k, 32);
            d = ((int64_t)ee_gauss(h2) * mr + (int64_t)(h3 & 0xFFFFFFu)) >> 24;
            r = clamp64((int64_t)resist[j] + d, 0, r_max_q);
            resist[j] = (uint8_t)r;
        }
    }
}

uint32_t ee_emns_hash(const int16_t *values, const uint8_t *resist, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < n; ++i) {
        uint16_t u = (uint16_t)values[i];
        h = (h ^ (u & 255u)) * 16777619u;
        h = (h ^ (uint32_t)(u >> 8)) * 16777619u;
    }
    for (i = 0; resist != NULL && i < n; ++i) {
        h = (h ^ resist[i]) * 16777619u;
    }
    return h;
}

/* ------------------------------------------------------------------ select evolution */
static void copy16(int16_t *dst, const int16_t *src, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = src[i];
    }
}

static void copy8(uint8_t *dst, const uint8_t *src, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = src[i];
    }
}

static int model_ok(const ee_emns_model_t *m)
{
    uint16_t l;
    uint32_t width;
    if (m->n_layers < 1u || m->layout == NULL || m->agg_t == NULL || m->act_t == NULL || m->nmask == NULL
        || m->cmask == NULL) {
        return 0;
    }
    width = ROW(m, 0, 0);
    for (l = 0; l < m->n_layers; ++l) {
        if (ROW(m, l, 0) > EE_EMNS_MAX_FAN_IN || (l > 0u && ROW(m, l, 0) != ROW(m, l - 1u, 1))) {
            return 0;
        }
        width = ROW(m, l, 1) > width ? ROW(m, l, 1) : width;
    }
    return width <= m->max_width;
}

int ee_emns_init(ee_emns_t *e, const ee_emns_cfg_t *cfg, const ee_emns_model_t *m, const int16_t *values,
                 const uint8_t *resist, void *mem, size_t mem_bytes)
{
    size_t n = m->n_params, nl = (size_t)m->n_neurons * 256u;
    uintptr_t a = ((uintptr_t)mem + 3u) & ~(uintptr_t)3u;
    uint8_t *p = (uint8_t *)mem + (a - (uintptr_t)mem);
    if (mem == NULL || mem_bytes < EE_EMNS_MEM_BYTES(m->n_params, m->n_neurons) || !model_ok(m)
        || cfg->mu_min_q <= 0 || cfg->mu_min_q > cfg->mu0_q || cfg->mu0_q > cfg->mu_max_q || cfg->dp_thr < 0
        || cfg->r_max_q < 0 || cfg->r_max_q > 255) {
        return -1;
    }
    e->cfg = *cfg;
    e->model = m;
    e->slot[0].values = (int16_t *)(void *)p;
    e->slot[1].values = e->slot[0].values + n;
    e->best = e->slot[1].values + n;
    p += 6u * n;
    e->slot[0].resist = p;
    e->slot[1].resist = p + n;
    p += 2u * n;
    e->slot[0].luts = (int8_t *)(void *)p;
    e->slot[1].luts = e->slot[0].luts + nl;
    e->parent = 0;
    copy16(e->slot[0].values, values, n);
    copy8(e->slot[0].resist, resist, n);
    copy16(e->best, values, n);
    ee_emns_build_luts(m, e->slot[0].values, e->slot[0].luts);
    e->generation = 0;
    e->mu_q = cfg->mu0_q;
    e->loss_parent = e->loss_child = e->loss_best = -1;
    e->accepted = 0;
    return 0;
}

const ee_emns_genome_t *ee_emns_parent(const ee_emns_t *e)
{
    return &e->slot[e->parent];
}

int ee_emns_step(ee_emns_t *e, ee_emns_loss_fn loss, void *ctx)
{
    const ee_emns_model_t *m = e->model;
    const ee_emns_cfg_t *c = &e->cfg;
    ee_emns_genome_t *par = &e->slot[e->parent], *ch = &e->slot[1u - e->parent];
    uint32_t g = e->generation;
    int64_t lp, lc, diff, mq, cur;
    int32_t f;

    copy16(ch->values, par->values, m->n_params);
    copy8(ch->resist, par->resist, m->n_params);
    ee_emns_mutate(m, ch->values, ch->resist, ee_key(c->seed, g, 1u), e->mu_q, c->val_k, c->res_k, c->r_max_q);
    ee_emns_build_luts(m, ch->values, ch->luts);
    lp = loss(ctx, m, par, g, 0u);
    lc = loss(ctx, m, ch, g, 1u);
    if (lp < 0 || lc < 0) {
        return -1;
    }
    /* dP = perf_child - perf_parent = (lp - lc) / D */
    diff = lp - lc;
    f = diff > c->dp_thr ? c->f_better_q : (-diff > c->dp_thr ? c->f_worse_q : c->f_flat_q);
    mq = ((int64_t)e->mu_q * f + 32768) >> 16;
    e->mu_q = (int32_t)clamp64(mq, c->mu_min_q, c->mu_max_q);
    e->accepted = (uint8_t)(diff >= 0
                            || ee_u32(ee_key(c->seed, g, EE_EMNS_PURPOSE_SELECT), 0u) < c->keep_worse_thr);
    if (e->accepted) {
        e->parent = (uint8_t)(1u - e->parent);
        cur = lc;
    } else {
        cur = lp;
    }
    if (e->loss_best < 0 || cur < e->loss_best) {
        e->loss_best = cur;
        copy16(e->best, e->slot[e->parent].values, m->n_params);
    }
    e->loss_parent = lp;
    e->loss_child = lc;
    e->generation = g + 1u;
    return 0;
}

/* ------------------------------------------------------------------ squared-error loss helper */
int64_t ee_emns_sse(void *data, const ee_emns_model_t *m, const ee_emns_genome_t *g, uint32_t generation,
                    uint32_t individual)
{
    const ee_emns_data_t *d = (const ee_emns_data_t *)data;
    uint32_t nb = d->batch == 0u ? d->n_samples : d->batch;
    uint32_t key = ee_key(d->seed, generation, EE_EMNS_PURPOSE_BATCH), b;
    int64_t sse = 0;
    (void)individual;
    for (b = 0; b < nb; ++b) {
        uint32_t s = d->batch == 0u ? b : ee_bounded(ee_u32(key, b), d->n_samples);
        const int8_t *t = d->T + (size_t)s * d->n_out;
        uint16_t o;
        ee_emns_forward(m, g->values, g->luts, d->X + (size_t)s * d->n_in, d->y, d->scratch);
        for (o = 0; o < d->n_out; ++o) {
            int32_t e = (int32_t)d->y[o] - (int32_t)t[o];
            sse += e * e;
        }
    }
    return sse;
}
