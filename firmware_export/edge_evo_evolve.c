/*
 * edge_evo on-device evolution (see edge_evo_evolve.h): GENREG and OpenES generation steps with
 * regenerated genomes, and the classification task helper. Every formula is the int8-mode one of the
 * Python strategies, in the same order of integer operations, so transcripts match bit for bit.
 */
#include "edge_evo_evolve.h"

#define TRUST_ROUND (1 << 16)   /* rshift_round(t * D, 17) */
#define DECAY_SHIFT 17
#define INHERIT_SHIFT 15
#define MEAN_FRAC 8
#define WEIGHT_FRAC 16
#define MOM_MAX ((int64_t)1 << 30)

uint32_t ee_fnv1a(const int8_t *g, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < n; ++i) {
        h ^= (uint32_t)(uint8_t)g[i];
        h *= 16777619u;
    }
    return h;
}

/* ------------------------------------------------------------------ genome layout */

/* Tensor t (W1, b1, W2, b2, ...): size and whether it holds weights. */
static size_t tensor_size(const ee_mlp_t *m, unsigned t)
{
    unsigned l = t / 2u;
    return (t & 1u) ? (size_t)m->dims[l + 1u] : (size_t)m->dims[l] * (size_t)m->dims[l + 1u];
}

static int8_t mutate(int32_t v, uint32_t km, uint32_t idx, uint32_t threshold, int32_t mult)
{
    uint32_t h = ee_u32(km, idx);
    if (h < threshold) {
        v += ee_gauss_scaled(ee_mix32(h ^ EE_NOISE_SALT), mult);
    }
    return ee_sat8(v);
}

void ee_breed_genome(const ee_mlp_t *m, const int8_t *pa, const int8_t *pb, uint32_t seed, uint32_t generation,
                     uint32_t child, uint32_t threshold, int32_t mult_w, int32_t mult_b, int8_t *out)
{
    uint32_t k = ee_key(seed, generation, child);
    uint32_t km = ee_absorb(k, EE_MUTATION_SALT);
    uint32_t idx = 0, c = 0;
    unsigned t;
    for (t = 0; t < 2u * m->n_layers; ++t) {
        size_t j, size = tensor_size(m, t);
        int32_t mult = (t & 1u) ? mult_b : mult_w;
        for (j = 0; j < size; ++j, ++idx) {
            if ((idx & 31u) == 0u || j == 0u) {
                c = ee_u32(k, idx >> 5);
            }
            out[idx] = mutate((c >> (idx & 31u)) & 1u ? pb[idx] : pa[idx], km, idx, threshold, mult);
        }
    }
}

void ee_init_genome(const ee_mlp_t *m, uint32_t seed, uint32_t individual, int32_t init_wq, int32_t init_bq,
                    int8_t *out)
{
    uint32_t k = ee_absorb(ee_key(seed, 0u, EE_PURPOSE_INIT), individual);
    uint32_t idx = 0;
    unsigned t;
    for (t = 0; t < 2u * m->n_layers; ++t) {
        size_t j, size = tensor_size(m, t);
        int32_t r = (t & 1u) ? init_bq : init_wq;
        uint32_t span = (uint32_t)(2 * r + 1);
        for (j = 0; j < size; ++j, ++idx) {
            out[idx] = (int8_t)((int32_t)ee_bounded(ee_u32(k, idx), span) - r);
        }
    }
}

/* ------------------------------------------------------------------ GENREG */

static void *carve(uint8_t **p, size_t bytes)
{
    void *r = *p;
    *p += bytes;
    return r;
}

int ee_genreg_init(ee_genreg_t *g, const ee_genreg_cfg_t *cfg, const ee_mlp_t *model, void *mem, size_t mem_bytes)
{
    uint8_t *p = (uint8_t *)mem;
    size_t P = cfg->population, k = cfg->n_survivors, n = ee_mlp_n_params(model), i;
    if (P < 1u || k < 1u || k > P || cfg->batch < 1u || model->n_layers > EE_MAX_LAYERS || mem == NULL ||
        ((uintptr_t)mem & 3u) != 0u || mem_bytes < EE_GENREG_MEM_BYTES(P, k, n, cfg->batch)) {
        return -1;
    }
    g->cfg = *cfg;
    g->model = *model;
    g->n = n;
    g->children = (ee_child_t *)carve(&p, 8u * P);
    g->surv_trust = (int32_t *)carve(&p, 4u * k);
    g->words = (uint32_t *)carve(&p, 12u * k);
    g->survivors = (int8_t *)carve(&p, k * n);
    g->genome = (int8_t *)carve(&p, n);
    g->column = (int8_t *)carve(&p, k);
    g->correct = (uint8_t *)carve(&p, cfg->batch);
    for (i = 0; i < P; ++i) {
        g->children[i].a = 0u;
        g->children[i].b = 0u;
        g->children[i].trust = 0;
    }
    g->generation = 0u;
    g->best_trust = 0;
    g->model.params = g->genome;
    return 0;
}

/* Child i of the generation being evaluated: generation 0 is the initial population, later ones were
 * bred by the previous step from the stored survivors. */
static void genreg_child(const ee_genreg_t *g, uint32_t i, int8_t *out)
{
    const ee_genreg_cfg_t *c = &g->cfg;
    if (g->generation == 0u) {
        ee_init_genome(&g->model, c->seed, i, c->init_wq, c->init_bq, out);
    } else {
        const ee_child_t *r = &g->children[i];
        ee_breed_genome(&g->model, g->survivors + (size_t)r->a * g->n, g->survivors + (size_t)r->b * g->n,
                        c->seed, g->generation - 1u, i, c->mutation_threshold, c->mult_w, c->mult_b, out);
    }
}

static int32_t trust_update(int32_t t, const uint8_t *correct, uint32_t B, const ee_genreg_cfg_t *c)
{
    uint32_t b;
    for (b = 0; b < B; ++b) {
        t -= (t * c->q_decay + TRUST_ROUND) >> DECAY_SHIFT;
        t += correct[b] ? c->q_reward : c->q_penalty;
    }
    return t;
}

/* Top k children by trust, best first, ties to the lower index (operators.topk), into sel. */
static void select_top(const ee_genreg_t *g, uint32_t *sel)
{
    uint32_t P = g->cfg.population, k = g->cfg.n_survivors, have = 0, i, j;
    for (i = 0; i < P; ++i) {
        int32_t t = g->children[i].trust;
        uint32_t pos = have;
        while (pos > 0u && g->children[sel[pos - 1u]].trust < t) {
            --pos;
        }
        if (pos >= k) {
            continue;
        }
        j = (have < k) ? have++ : k - 1u;
        for (; j > pos; --j) {
            sel[j] = sel[j - 1u];
        }
        sel[pos] = i;
    }
}

/* Write the k selected children into the survivor store in place: the store still holds their parents,
 * so it is rebuilt one flat index at a time (every survivor's value at idx reads only idx of its parents). */
static void materialize(ee_genreg_t *g)
{
    const ee_genreg_cfg_t *c = &g->cfg;
    uint32_t k = c->n_survivors, j, idx = 0;
    uint32_t *sel = g->words, *kc = g->words + k, *cw = g->words + 2u * k;
    size_t n = g->n;
    unsigned t;
    if (g->generation == 0u) {
        for (j = 0; j < k; ++j) {
            ee_init_genome(&g->model, c->seed, sel[j], c->init_wq, c->init_bq, g->survivors + (size_t)j * n);
        }
        return;
    }
    for (j = 0; j < k; ++j) {
        kc[j] = ee_key(c->seed, g->generation - 1u, sel[j]);
    }
    for (t = 0; t < 2u * g->model.n_layers; ++t) {
        size_t e, size = tensor_size(&g->model, t);
        int32_t mult = (t & 1u) ? c->mult_b : c->mult_w;
        for (e = 0; e < size; ++e, ++idx) {
            if ((idx & 31u) == 0u || e == 0u) {
                for (j = 0; j < k; ++j) {
                    cw[j] = ee_u32(kc[j], idx >> 5);
                }
            }
            for (j = 0; j < k; ++j) {
                const ee_child_t *r = &g->children[sel[j]];
                int8_t v = ((cw[j] >> (idx & 31u)) & 1u) ? g->survivors[(size_t)r->b * n + idx]
                                                          : g->survivors[(size_t)r->a * n + idx];
                g->column[j] = mutate(v, ee_absorb(kc[j], EE_MUTATION_SALT), idx, c->mutation_threshold, mult);
            }
            for (j = 0; j < k; ++j) {
                g->survivors[(size_t)j * n + idx] = g->column[j];
            }
        }
    }
}

int ee_genreg_step(ee_genreg_t *g, ee_genreg_eval_fn eval, void *ctx)
{
    const ee_genreg_cfg_t *c = &g->cfg;
    uint32_t P = c->population, k = c->n_survivors, i, j;
    uint32_t *sel = g->words, *cum = g->words + k;
    uint64_t total = 0;
    uint32_t ks;

    for (i = 0; i < P; ++i) {
        genreg_child(g, i, g->genome);
        eval(ctx, g->genome, g->generation, i, g->correct);
        g->children[i].trust = trust_update(g->children[i].trust, g->correct, c->batch, c);
    }
    select_top(g, sel);
    for (j = 0; j < k; ++j) {
        g->surv_trust[j] = g->children[sel[j]].trust;
    }
    materialize(g);

    /* weights trust - t_min + 256 (int64 in Python; the total must stay below 2^32) */
    for (j = 0; j < k; ++j) {
        total += (uint64_t)((int64_t)g->surv_trust[j] - (int64_t)g->surv_trust[k - 1u] + 256);
        if (total > 0xFFFFFFFFu) {
            return -2;
        }
        cum[j] = (uint32_t)total;
    }
    ks = ee_key(c->seed, g->generation, EE_PURPOSE_SELECT);
    for (i = 0; i < P; ++i) {
        uint32_t d, pick[2];
        for (d = 0; d < 2u; ++d) {
            uint32_t r = ee_bounded(ee_u32(ks, 2u * i + d), (uint32_t)total);
            j = 0;
            while (cum[j] <= r) {
                ++j;
            }
            pick[d] = j;
        }
        g->children[i].a = (uint16_t)pick[0];
        g->children[i].b = (uint16_t)pick[1];
        /* rshift_round((t_a + t_b) * I, 15) with an int64 product */
        g->children[i].trust = (int32_t)((((int64_t)g->surv_trust[pick[0]] + g->surv_trust[pick[1]]) * c->q_inherit +
                                          ((int64_t)1 << (INHERIT_SHIFT - 1))) >> INHERIT_SHIFT);
    }
    g->best_trust = g->surv_trust[0];
    g->generation++;
    return 0;
}

const int8_t *ee_genreg_best(const ee_genreg_t *g)
{
    return g->survivors;
}

/* ------------------------------------------------------------------ OpenES */

int ee_openes_init(ee_openes_t *o, const ee_openes_cfg_t *cfg, const ee_mlp_t *model, void *mem, size_t mem_bytes)
{
    uint8_t *p = (uint8_t *)mem;
    size_t P = cfg->population, n = ee_mlp_n_params(model), j;
    uint32_t kinit = ee_key(cfg->seed, 0u, EE_PURPOSE_INIT), idx = 0;
    unsigned t;
    if (P < 2u || (P & 1u) || model->n_layers > EE_MAX_LAYERS || mem == NULL || ((uintptr_t)mem & 3u) != 0u ||
        mem_bytes < EE_OPENES_MEM_BYTES(P, n)) {
        return -1;
    }
    o->cfg = *cfg;
    o->model = *model;
    o->n = n;
    o->mean = (int32_t *)carve(&p, 4u * n);
    o->mom = (int32_t *)carve(&p, 4u * n);
    o->fitness = (int32_t *)carve(&p, 4u * P);
    o->d = (int32_t *)carve(&p, 4u * (P / 2u));
    o->genome = (int8_t *)carve(&p, n);
    o->model.params = o->genome;
    for (t = 0; t < 2u * model->n_layers; ++t) {
        size_t size = tensor_size(model, t);
        int32_t A = cfg->init_a[t / 2u];
        for (j = 0; j < size; ++j, ++idx) {
            /* ((h * (2A + 1)) >> 32) - A: U[-A, A] from one 32x32->64 product */
            o->mean[idx] = (t & 1u) ? 0 : (int32_t)ee_bounded(ee_u32(kinit, idx), (uint32_t)(2 * A + 1)) - A;
            o->mom[idx] = 0;
        }
    }
    o->generation = 0u;
    o->best_fitness = 0;
    return 0;
}

int ee_openes_init_from(ee_openes_t *o, const ee_openes_cfg_t *cfg, const ee_mlp_t *model, void *mem,
                        size_t mem_bytes, const int8_t *genome)
{
    size_t i;
    if (genome == NULL || ee_openes_init(o, cfg, model, mem, mem_bytes) != 0) {
        return -1;
    }
    for (i = 0; i < o->n; ++i) {
        o->mean[i] = (int32_t)genome[i] * (1 << MEAN_FRAC);
    }
    return 0;
}

void ee_openes_offspring(const ee_openes_t *o, uint32_t individual, int8_t *out)
{
    uint32_t kk = ee_key(o->cfg.seed, o->generation, individual >> 1);
    uint32_t idx = 0;
    unsigned t;
    for (t = 0; t < 2u * o->model.n_layers; ++t) {
        size_t j, size = tensor_size(&o->model, t);
        int32_t sm = o->cfg.sm[t];
        for (j = 0; j < size; ++j, ++idx) {
            int32_t c = (o->mean[idx] + (1 << (MEAN_FRAC - 1))) >> MEAN_FRAC;
            int32_t e = ee_gauss_scaled(ee_u32(kk, idx), sm);
            out[idx] = ee_sat8((individual & 1u) ? c - e : c + e);
        }
    }
}

/* Q16 shaping weight of rank r (rank 0 = best), openes.shaping_weights. */
static int32_t shaping_weight(uint32_t P, uint8_t shaping, uint32_t r, uint64_t sum)
{
    if (shaping == EE_SHAPING_RANK5) {
        uint64_t u = (uint64_t)(P - 1u - r);
        u = u * u * u * u * u;
        return (int32_t)((u << WEIGHT_FRAC) / sum);
    } else {
        int32_t c = (int32_t)P - 1 - 2 * (int32_t)r;
        uint64_t a = (uint64_t)(c < 0 ? -c : c);
        int32_t w = (int32_t)((a << WEIGHT_FRAC) / sum);
        return c < 0 ? -w : w;
    }
}

static uint64_t shaping_sum(uint32_t P, uint8_t shaping)
{
    uint64_t s = 0;
    uint32_t i;
    for (i = 0; i < P; ++i) {
        if (shaping == EE_SHAPING_RANK5) {
            uint64_t u = i;
            s += u * u * u * u * u;
        } else {
            int32_t c = (int32_t)P - 1 - 2 * (int32_t)i;
            s += (uint64_t)(c < 0 ? -c : c);
        }
    }
    return s;
}

/* Stable descending rank (openes.ranks): better fitness first, ties to the lower index. */
static uint32_t rank_of(const int32_t *f, uint32_t P, uint32_t i)
{
    uint32_t j, r = 0;
    for (j = 0; j < P; ++j) {
        if (f[j] > f[i] || (f[j] == f[i] && j < i)) {
            ++r;
        }
    }
    return r;
}

static int64_t mulshift(int32_t a, int64_t b)
{
    return ((int64_t)a * b + ((int64_t)1 << (WEIGHT_FRAC - 1))) >> WEIGHT_FRAC;
}

static int64_t clamp64(int64_t v, int64_t lim)
{
    return v > lim ? lim : (v < -lim ? -lim : v);
}

int ee_openes_step(ee_openes_t *o, ee_openes_fitness_fn fitness, void *ctx)
{
    ee_openes_cfg_t *c = &o->cfg;
    uint32_t P = c->population, K = P / 2u, i, kk, idx = 0;
    uint64_t sum = shaping_sum(P, c->shaping);
    int64_t mmax = (int64_t)127 << MEAN_FRAC;
    int32_t best;
    unsigned t;

    for (i = 0; i < P; ++i) {
        ee_openes_offspring(o, i, o->genome);
        o->fitness[i] = fitness(ctx, o->genome, o->generation, i);
    }
    best = o->fitness[0];
    for (i = 1; i < P; ++i) {
        best = o->fitness[i] > best ? o->fitness[i] : best;
    }
    for (kk = 0; kk < K; ++kk) {
        o->d[kk] = shaping_weight(P, c->shaping, rank_of(o->fitness, P, 2u * kk), sum) -
                   shaping_weight(P, c->shaping, rank_of(o->fitness, P, 2u * kk + 1u), sum);
    }
    /* the pair keys go into the (now free) fitness array: the update needs them n times each */
    for (kk = 0; kk < K; ++kk) {
        o->fitness[kk] = (int32_t)ee_key(c->seed, o->generation, kk);
    }
    for (t = 0; t < 2u * o->model.n_layers; ++t) {
        size_t j, size = tensor_size(&o->model, t);
        int32_t sm = c->sm[t];
        for (j = 0; j < size; ++j, ++idx) {
            int32_t acc = 0;
            int64_t gj, m, v;
            for (kk = 0; kk < K; ++kk) {
                if (o->d[kk] != 0) {
                    acc += o->d[kk] * ee_gauss_scaled(ee_u32((uint32_t)o->fitness[kk], idx), sm);
                }
            }
            gj = (int64_t)((acc + (1 << (WEIGHT_FRAC - MEAN_FRAC - 1))) >> (WEIGHT_FRAC - MEAN_FRAC)) -
                 mulshift(c->wd_q, o->mean[idx]);
            m = clamp64(mulshift(c->beta_q, o->mom[idx]) + gj, MOM_MAX);
            o->mom[idx] = (int32_t)m;
            v = (int64_t)o->mean[idx] + mulshift(c->lr_q, m);
            o->mean[idx] = (int32_t)clamp64(v, mmax);
        }
    }
    for (t = 0; t < 2u * o->model.n_layers; ++t) {
        int64_t s = ((int64_t)c->sm[t] * c->sigma_decay_q + (1 << 15)) >> 16;
        c->sm[t] = (int32_t)(s > c->sm_min[t] ? s : c->sm_min[t]);
    }
    {
        int64_t l = ((int64_t)c->lr_q * c->lr_decay_q + (1 << 15)) >> 16;
        c->lr_q = (int32_t)(l > c->lr_min_q ? l : c->lr_min_q);
    }
    o->best_fitness = best;
    o->generation++;
    return 0;
}

void ee_openes_best(const ee_openes_t *o, int8_t *out)
{
    size_t j;
    for (j = 0; j < o->n; ++j) {
        out[j] = ee_sat8((o->mean[j] + (1 << (MEAN_FRAC - 1))) >> MEAN_FRAC);
    }
}

/* ------------------------------------------------------------------ classification task */

int ee_cls_task_init(ee_cls_task_t *t)
{
    uint32_t i;
    uint16_t c, pos = 0;
    if (t->n_classes < 2u || t->n_classes > 256u || t->n_samples > 0xFFFFu) {
        return -1;
    }
    for (c = 0; c < t->n_classes; ++c) {
        t->counts[c] = 0u;
    }
    for (i = 0; i < t->n_samples; ++i) {
        if (t->y[i] >= t->n_classes) {
            return -1;
        }
        t->counts[t->y[i]]++;
    }
    for (c = 0; c < t->n_classes; ++c) {
        if (t->per_class > 0u && t->counts[c] == 0u) {
            return -1;
        }
        t->starts[c] = pos;
        pos = (uint16_t)(pos + t->counts[c]);
    }
    /* stable counting sort (np.argsort(y, kind="stable")) */
    for (c = 0; c < t->n_classes; ++c) {
        uint16_t w = t->starts[c];
        for (i = 0; i < t->n_samples; ++i) {
            if (t->y[i] == c) {
                t->members[w++] = (uint16_t)i;
            }
        }
    }
    t->batch_generation = 0xFFFFFFFFu;
    return 0;
}

uint32_t ee_cls_batch_len(const ee_cls_task_t *t)
{
    return t->per_class > 0u ? (uint32_t)t->n_classes * t->per_class : t->batch;
}

void ee_cls_batch(ee_cls_task_t *t, uint32_t generation)
{
    uint32_t k = ee_key(t->seed, generation, EE_PURPOSE_BATCH), i;
    if (t->per_class == 0u) {
        for (i = 0; i < t->batch; ++i) {
            t->batch_idx[i] = (uint16_t)ee_bounded(ee_u32(k, i), t->n_samples);
        }
    } else {
        uint8_t order[256];
        uint32_t C = t->n_classes, pos = 0, ci, r;
        for (i = 0; i < C; ++i) {
            order[i] = (uint8_t)i;
        }
        for (i = C - 1u; i > 0u; --i) {   /* Fisher-Yates, step i draws u32(k, i) */
            uint32_t j = ee_bounded(ee_u32(k, i), i + 1u);
            uint8_t s = order[i];
            order[i] = order[j];
            order[j] = s;
        }
        for (ci = 0; ci < C; ++ci) {
            uint32_t c = order[ci];
            for (r = 0; r < t->per_class; ++r, ++pos) {
                uint32_t h = ee_u32(k, C + pos);
                t->batch_idx[pos] = t->members[t->starts[c] + ee_bounded(h, t->counts[c])];
            }
        }
    }
    t->batch_generation = generation;
}

/* argmax_c(logit_c + G[u >> 24]), u = u32(key, base + c): |logit| < 2^25 and |G| < 2^(frac + 3), so the
 * int32 sum cannot overflow. Ties go to the lowest class. */
static int sample_class(const int32_t *logits, uint32_t C, uint32_t key, uint32_t base, const int32_t *gumbel)
{
    uint32_t c;
    int32_t best = 0;
    int arg = 0;
    for (c = 0; c < C; ++c) {
        int32_t v = logits[c] + gumbel[ee_u32(key, base + c) >> 24];
        if (c == 0u || v > best) {
            best = v;
            arg = (int)c;
        }
    }
    return arg;
}

uint32_t ee_cls_eval(ee_cls_task_t *t, const int8_t *genome, uint32_t generation, uint32_t individual,
                     uint8_t *correct)
{
    ee_mlp_t m = *t->model;
    uint32_t B = ee_cls_batch_len(t), C = m.dims[m.n_layers], n, hits = 0;
    uint32_t kp = ee_key(t->seed, generation, EE_PURPOSE_PREDICT);
    m.params = genome;
    if (t->batch_generation != generation) {
        ee_cls_batch(t, generation);
    }
    for (n = 0; n < B; ++n) {
        uint32_t s = t->batch_idx[n];
        int pred = ee_mlp_forward(&m, t->X + (size_t)s * m.dims[0], t->logits, t->scratch);
        uint8_t ok;
        if (t->gumbel != NULL) {
            pred = sample_class(t->logits, C, kp, (individual * B + n) * C, t->gumbel);
        }
        ok = (uint8_t)(pred == (int)t->y[s]);
        hits += ok;
        if (correct != NULL) {
            correct[n] = ok;
        }
    }
    return hits;
}

uint32_t ee_cls_count_correct(const ee_cls_task_t *t, const int8_t *genome, const int8_t *X, const uint8_t *y,
                              uint32_t n)
{
    ee_mlp_t m = *t->model;
    uint32_t i, hits = 0;
    m.params = genome;
    for (i = 0; i < n; ++i) {
        hits += (uint32_t)(ee_mlp_forward(&m, X + (size_t)i * m.dims[0], t->logits, t->scratch) == (int)y[i]);
    }
    return hits;
}

void ee_cls_genreg_eval(void *task, const int8_t *genome, uint32_t generation, uint32_t individual,
                        uint8_t *correct)
{
    (void)ee_cls_eval((ee_cls_task_t *)task, genome, generation, individual, correct);
}

int32_t ee_cls_openes_eval(void *task, const int8_t *genome, uint32_t generation, uint32_t individual)
{
    return (int32_t)ee_cls_eval((ee_cls_task_t *)task, genome, generation, individual, NULL);
}
