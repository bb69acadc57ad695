/*
 * edge_evo C runtime: the numerics contract "edge_evo-int8-pow2-v1" (docs/numerics.md) in C99.
 *
 * Bit-exact twin of the Numba kernels (edge_evo/fixedpoint, edge_evo/rng.py, edge_evo/kernels/dense.py):
 * the same round-half-up power-of-two requantization, the same int8[256] lookup tables and the same
 * counter-based RNG (noise = f(seed, generation, individual, index)). No malloc and no libc: only
 * <stdint.h> and <stddef.h>; every buffer is owned by the caller and sized by the exported header.
 */
#ifndef EDGE_EVO_RT_H
#define EDGE_EVO_RT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EE_CONTRACT "edge_evo-int8-pow2-v1"
#define EE_QMAX 127

/* The contract needs an arithmetic (flooring) >> of negative int32; C99 leaves it
 * implementation-defined (gcc and clang define it as arithmetic). Refuse any other compiler. */
typedef char ee_assert_arithmetic_shift[(((int32_t)-5) >> 1) == -3 ? 1 : -1];

/* ------------------------------------------------------------------ fixed point */

/* (acc + 2^(s-1)) >> s without the int32 overflow of the sum: floor part plus the rounding bit. */
static inline int32_t ee_rshift_round(int32_t acc, unsigned s)
{
    if (s == 0u) {
        return acc;
    }
    return (acc >> s) + ((acc >> (s - 1u)) & 1);
}

/* Symmetric saturation: -128 is never produced, so negation is always safe. */
static inline int8_t ee_sat8(int32_t v)
{
    if (v > EE_QMAX) {
        return (int8_t)EE_QMAX;
    }
    if (v < -EE_QMAX) {
        return (int8_t)-EE_QMAX;
    }
    return (int8_t)v;
}

static inline int8_t ee_requantize(int32_t acc, unsigned s)
{
    return ee_sat8(ee_rshift_round(acc, s));
}

/* Tables are data indexed by q + 128; backends never recompute the nonlinearity. */
static inline int8_t ee_lut_apply(const int8_t lut[256], int8_t q)
{
    return lut[(int32_t)q + 128];
}

/* uint8 pixel [0, 255] -> int8 Q7 [0, 127]: q = (127 p + 127) // 255, as quantize_input_u8
 * (unsigned division floors, so it equals Python's //). */
static inline int8_t ee_pixel_q7(uint8_t p)
{
    return (int8_t)((127u * (uint32_t)p + 127u) / 255u);
}

/* ------------------------------------------------------------------ counter-based RNG */
#define EE_GOLDEN 0x9E3779B9u
#define EE_KEY_INIT 0x6A09E667u
#define EE_GAUSS_MAX 510
#define EE_POPULATION_STREAM 0x80000000u

/* uint32_t arithmetic wraps modulo 2^32 by definition, as the spec's masked steps. */
static inline uint32_t ee_mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

static inline uint32_t ee_absorb(uint32_t k, uint32_t v)
{
    return ee_mix32((k ^ v) + EE_GOLDEN);
}

static inline uint32_t ee_key(uint32_t seed, uint32_t generation, uint32_t individual)
{
    return ee_absorb(ee_absorb(ee_absorb(EE_KEY_INIT, seed), generation), individual);
}

static inline uint32_t ee_u32(uint32_t key, uint32_t index)
{
    return ee_mix32(ee_mix32(index ^ key) + key);
}

/* Uniform in [0, n): one 32x32->64 multiply (UMULL on Cortex-M3+, __aeabi_lmul on M0). */
static inline uint32_t ee_bounded(uint32_t h, uint32_t n)
{
    return (uint32_t)(((uint64_t)h * (uint64_t)n) >> 32);
}

static inline int ee_bernoulli(uint32_t h, uint32_t threshold)
{
    return h < threshold;
}

/* Irwin-Hall(4) of the bytes of h: [-510, 510], sd 147.8006. */
static inline int32_t ee_gauss(uint32_t h)
{
    return (int32_t)((h & 255u) + ((h >> 8) & 255u) + ((h >> 16) & 255u) + (h >> 24)) - EE_GAUSS_MAX;
}

/* |gauss * m| + 32768 < 2^31 for m < 2^22, so the int32 product cannot overflow. */
static inline int32_t ee_gauss_scaled(uint32_t h, int32_t m)
{
    return (ee_gauss(h) * m + 32768) >> 16;
}

/* ------------------------------------------------------------------ int8 MLP */

/* One model: the flat genome in canonical order W1, b1, W2, b2, ... (W row-major [out][in]),
 * exactly as the Python Population's genome(i); RNG indices on the device use the same order. */
typedef struct {
    uint16_t n_layers;          /* >= 1 */
    const uint16_t *dims;       /* n_layers + 1 sizes: inputs, hidden..., outputs */
    const int8_t *params;       /* flat genome, sum of (dims[l] + 1) * dims[l + 1] bytes */
    const int8_t *lut;          /* int8[256] activation of the hidden layers, indexed by z + 128 */
    uint8_t w_frac, b_frac, x_frac, z_frac, h_frac;
} ee_mlp_t;

/* Scratch bytes ee_mlp_forward needs: two ping-pong buffers of the widest hidden layer. */
#define EE_MLP_SCRATCH_BYTES(max_hidden) (2u * (size_t)(max_hidden))

/* Number of parameters of an MLP (genome length). */
size_t ee_mlp_n_params(const ee_mlp_t *m);

/* Widest hidden layer (0 for a single-layer model). */
size_t ee_mlp_max_hidden(const ee_mlp_t *m);

/* x: int8[dims[0]] in Q(x_frac); logits: int32[dims[n_layers]] in Q(w_frac + in_frac_L);
 * scratch: int8[EE_MLP_SCRATCH_BYTES(max_hidden)] (may be NULL for a single layer).
 * Returns the argmax of the logits (ties -> lowest index), or EE_ERR_ARG (-1) for a NULL
 * pointer (scratch only when a hidden layer needs it), no layer, or formats that give a
 * negative shift; nothing is written then. */
#define EE_ERR_ARG (-1)
int ee_mlp_forward(const ee_mlp_t *m, const int8_t *x, int32_t *logits, int8_t *scratch);

/* Index of the largest value, ties -> lowest index; n >= 1. */
int ee_argmax(const int32_t *v, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* EDGE_EVO_RT_H */
