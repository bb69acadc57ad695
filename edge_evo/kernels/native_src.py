"""C source of the ``native`` engine (compiled on first use by kernels/native.py).

One function, ``ee_dense``, computes a dense int8 layer of a whole population with the integer
equations of models/mlp.py (the ``numba`` reference of kernels/dense.py):

    acc[p, n, o] = sum_j W[p, o, j] * X[xp, n, j] + (b[p, o] << bias_shift)              (int32)
    hidden:  out8[p, n, o]  = lut[sat8(rshift_round(acc, out_shift)) + 128]
    output:  out32[p, n, o] = acc

AVX512-VNNI ``vpdpbusd`` multiplies unsigned by signed bytes, so X is offset to u8 (x + 128) and
the offset is removed exactly with the row sums of W: sum W*x = sum W*(x+128) - 128 * sum W.
Each product pair stays below 2**16 and each dot below 2**31, so the result is exact for any
int8 input, not only the [0, 127] pixels. Without VNNI (checked at run time with
``__builtin_cpu_supports``) a portable scalar loop gives the same integers.
"""

C_SOURCE = r"""
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EE_X86 1
#endif

static inline int32_t ee_requant_sat8(int32_t acc, int shift) {
    /* contract: round half up (arithmetic shift), then saturate to [-127, 127] */
    if (shift > 0) acc = (acc + (1 << (shift - 1))) >> shift;
    if (acc > 127) acc = 127;
    if (acc < -127) acc = -127;
    return acc;
}

static inline void ee_store(int32_t dot, const int8_t *b, int o, int bias_shift, int out_shift,
                            const int8_t *lut, int8_t *o8, int32_t *o32, size_t idx) {
    int32_t acc = dot + (int32_t)((uint32_t)(int32_t)b[o] << bias_shift);
    if (lut) o8[idx] = lut[ee_requant_sat8(acc, out_shift) + 128];
    else o32[idx] = acc;
}

/* ------------------------------------------------------------------ portable reference */
#define EE_GENOME_SCALAR(NAME, ATTR)                                                                  \
static ATTR void NAME(const int8_t *W, const int8_t *b, const int8_t *X, int O, int I, int B,          \
                      int bias_shift, int out_shift, const int8_t *lut, int8_t *o8, int32_t *o32) {    \
    for (int n = 0; n < B; n++) {                                                                     \
        const int8_t *x = X + (size_t)n * I;                                                          \
        for (int o = 0; o < O; o++) {                                                                 \
            const int8_t *w = W + (size_t)o * I;                                                      \
            int32_t s = 0;                                                                            \
            for (int j = 0; j < I; j++) s += (int32_t)w[j] * (int32_t)x[j];                           \
            ee_store(s, b, o, bias_shift, out_shift, lut, o8, o32, (size_t)n * O + o);                \
        }                                                                                             \
    }                                                                                                 \
}
EE_GENOME_SCALAR(ee_genome_scalar, )

#ifdef EE_X86
#define EE_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
/* gcc 12 copies the accumulator around the vpdpbusd builtin (one extra move per product);
   the inline-asm form updates it in place. */
#if defined(__GNUC__)
#define EE_DP(acc, u, s) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s))
#else
#define EE_DP(acc, u, s) ((acc) = _mm512_dpbusd_epi32((acc), (u), (s)))
#endif

/* 16 vectors of 16 int32 lanes -> one vector of their 16 horizontal sums, in order. */
static inline EE_VNNI __m512i ee_hsum16(__m512i a[16]) {
    __m512i v[8], w[4], x[2];
    for (int i = 0; i < 8; i++)
        v[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2 * i], a[2 * i + 1]),
                                _mm512_unpackhi_epi32(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        w[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(v[2 * i], v[2 * i + 1]),
                                _mm512_unpackhi_epi64(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        x[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(w[2 * i], w[2 * i + 1], 0x88),
                                _mm512_shuffle_i32x4(w[2 * i], w[2 * i + 1], 0xDD));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(x[0], x[1], 0x88),
                            _mm512_shuffle_i32x4(x[0], x[1], 0xDD));
}

/* One genome. Xu: [B, I] bytes already offset (x ^ 0x80 == x + 128 as u8).
   Tiles of 4 W rows x 4 samples share every load: 8 loads feed 16 vpdpbusd. */
static EE_VNNI void ee_genome_vnni(const int8_t *W, const int8_t *b, const uint8_t *Xu, int O, int I, int B,
                                   int bias_shift, int out_shift, const int8_t *lut,
                                   int8_t *o8, int32_t *o32) {
    const int nfull = I / 64;
    const __mmask64 tail = (I % 64) ? (((__mmask64)1 << (I % 64)) - 1) : 0;
    const __m512i ones = _mm512_set1_epi8(1);
    int32_t corr[4];
    int o0 = 0;
    for (; o0 + 4 <= O; o0 += 4) {
        const int8_t *w0 = W + (size_t)o0 * I;
        /* 128 * row sum of W, computed with the same instruction (u8 ones x s8 W) */
        for (int r = 0; r < 4; r++) {
            __m512i s = _mm512_setzero_si512();
            const int8_t *wr = w0 + (size_t)r * I;
            for (int k = 0; k < nfull; k++) s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512(wr + 64 * k));
            if (tail) s = _mm512_dpbusd_epi32(s, ones, _mm512_maskz_loadu_epi8(tail, wr + 64 * nfull));
            corr[r] = 128 * _mm512_reduce_add_epi32(s);
        }
        int n0 = 0;
        for (; n0 + 4 <= B; n0 += 4) {
            __m512i acc[16];
            for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_si512();
            const uint8_t *x0 = Xu + (size_t)n0 * I;
            /* full chunks and the masked tail in separate loops: one merged loop made gcc
               shuffle the 16 accumulators through extra registers and the stack */
            for (int k = 0; k < nfull; k++) {
                const __m512i x_0 = _mm512_loadu_si512(x0 + 64 * k);
                const __m512i x_1 = _mm512_loadu_si512(x0 + (size_t)I + 64 * k);
                const __m512i x_2 = _mm512_loadu_si512(x0 + (size_t)2 * I + 64 * k);
                const __m512i x_3 = _mm512_loadu_si512(x0 + (size_t)3 * I + 64 * k);
                for (int r = 0; r < 4; r++) {
                    const __m512i wv = _mm512_loadu_si512(w0 + (size_t)r * I + 64 * k);
                    EE_DP(acc[4 * r + 0], x_0, wv);
                    EE_DP(acc[4 * r + 1], x_1, wv);
                    EE_DP(acc[4 * r + 2], x_2, wv);
                    EE_DP(acc[4 * r + 3], x_3, wv);
                }
            }
            if (tail) {
                const int k = nfull;
                const __m512i x_0 = _mm512_maskz_loadu_epi8(tail, x0 + 64 * k);
                const __m512i x_1 = _mm512_maskz_loadu_epi8(tail, x0 + (size_t)I + 64 * k);
                const __m512i x_2 = _mm512_maskz_loadu_epi8(tail, x0 + (size_t)2 * I + 64 * k);
                const __m512i x_3 = _mm512_maskz_loadu_epi8(tail, x0 + (size_t)3 * I + 64 * k);
                for (int r = 0; r < 4; r++) {
                    const __m512i wv = _mm512_maskz_loadu_epi8(tail, w0 + (size_t)r * I + 64 * k);
                    EE_DP(acc[4 * r + 0], x_0, wv);
                    EE_DP(acc[4 * r + 1], x_1, wv);
                    EE_DP(acc[4 * r + 2], x_2, wv);
                    EE_DP(acc[4 * r + 3], x_3, wv);
                }
            }
            int32_t s[16];
            _mm512_storeu_si512(s, ee_hsum16(acc));
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++)
                    ee_store(s[4 * r + c] - corr[r], b, o0 + r, bias_shift, out_shift, lut, o8, o32,
                             (size_t)(n0 + c) * O + o0 + r);
        }
        for (; n0 < B; n0++) {
            const uint8_t *x = Xu + (size_t)n0 * I;
            for (int r = 0; r < 4; r++) {
                const int8_t *wr = w0 + (size_t)r * I;
                __m512i a = _mm512_setzero_si512();
                for (int k = 0; k < nfull; k++)
                    a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512(x + 64 * k), _mm512_loadu_si512(wr + 64 * k));
                if (tail) a = _mm512_dpbusd_epi32(a, _mm512_maskz_loadu_epi8(tail, x + 64 * nfull),
                                                  _mm512_maskz_loadu_epi8(tail, wr + 64 * nfull));
                ee_store(_mm512_reduce_add_epi32(a) - corr[r], b, o0 + r, bias_shift, out_shift, lut, o8, o32,
                         (size_t)n0 * O + o0 + r);
            }
        }
    }
    /* remaining rows (O % 4): one dot product at a time */
    for (; o0 < O; o0++) {
        const int8_t *wr = W + (size_t)o0 * I;
        __m512i s = _mm512_setzero_si512();
        for (int k = 0; k < nfull; k++) s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512(wr + 64 * k));
        if (tail) s = _mm512_dpbusd_epi32(s, ones, _mm512_maskz_loadu_epi8(tail, wr + 64 * nfull));
        int32_t cr = 128 * _mm512_reduce_add_epi32(s);
        for (int n = 0; n < B; n++) {
            const uint8_t *x = Xu + (size_t)n * I;
            __m512i a = _mm512_setzero_si512();
            for (int k = 0; k < nfull; k++)
                a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512(x + 64 * k), _mm512_loadu_si512(wr + 64 * k));
            if (tail) a = _mm512_dpbusd_epi32(a, _mm512_maskz_loadu_epi8(tail, x + 64 * nfull),
                                              _mm512_maskz_loadu_epi8(tail, wr + 64 * nfull));
            ee_store(_mm512_reduce_add_epi32(a) - cr, b, o0, bias_shift, out_shift, lut, o8, o32,
                     (size_t)n * O + o0);
        }
    }
}

#define EE_AVX2 __attribute__((target("avx2")))
EE_GENOME_SCALAR(ee_genome_scalar_avx2, EE_AVX2)

/* AVX2 without VNNI: vpmaddubsw (u8 x s8 -> s16 pairs) then vpmaddwd by ones. Exact only when
   every x is in [0, 127]: a pair is then at most 2 * 127 * 128 = 32512 < 2**15, no saturation.
   Xp: [B, Ip] bytes, Ip = 32 * (nfull + 1); chunk nfull holds x[I-32 .. I-1] with the bytes
   already counted by the full chunks zeroed, so W's tail is read in bounds at offset I - 32. */
static inline EE_AVX2 int32_t ee_hsum8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

#define EE_R 2
#define EE_C 4
static EE_AVX2 void ee_genome_avx2(const int8_t *W, const int8_t *b, const uint8_t *Xp, int O, int I, int B,
                                   int bias_shift, int out_shift, const int8_t *lut,
                                   int8_t *o8, int32_t *o32) {
    const int nfull = I / 32, has_tail = (I % 32) != 0, Ip = 32 * (nfull + 1);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int o0 = 0; o0 < O; o0 += EE_R) {
        const int R = (O - o0) < EE_R ? (O - o0) : EE_R;
        for (int n0 = 0; n0 < B; n0 += EE_C) {
            const int C = (B - n0) < EE_C ? (B - n0) : EE_C;
            if (R == EE_R && C == EE_C) {
                __m256i acc[EE_R * EE_C];
                for (int i = 0; i < EE_R * EE_C; i++) acc[i] = _mm256_setzero_si256();
                const uint8_t *xb = Xp + (size_t)n0 * Ip;
                const int8_t *w0 = W + (size_t)o0 * I;
                for (int k = 0; k < nfull + has_tail; k++) {
                    const int wo = k < nfull ? 32 * k : I - 32;
                    const __m256i x_0 = _mm256_loadu_si256((const __m256i *)(xb + 32 * k));
                    const __m256i x_1 = _mm256_loadu_si256((const __m256i *)(xb + (size_t)Ip + 32 * k));
                    const __m256i x_2 = _mm256_loadu_si256((const __m256i *)(xb + (size_t)2 * Ip + 32 * k));
                    const __m256i x_3 = _mm256_loadu_si256((const __m256i *)(xb + (size_t)3 * Ip + 32 * k));
                    for (int r = 0; r < EE_R; r++) {
                        const __m256i wv = _mm256_loadu_si256((const __m256i *)(w0 + (size_t)r * I + wo));
                        acc[4 * r + 0] = _mm256_add_epi32(acc[4 * r + 0], _mm256_madd_epi16(_mm256_maddubs_epi16(x_0, wv), ones));
                        acc[4 * r + 1] = _mm256_add_epi32(acc[4 * r + 1], _mm256_madd_epi16(_mm256_maddubs_epi16(x_1, wv), ones));
                        acc[4 * r + 2] = _mm256_add_epi32(acc[4 * r + 2], _mm256_madd_epi16(_mm256_maddubs_epi16(x_2, wv), ones));
                        acc[4 * r + 3] = _mm256_add_epi32(acc[4 * r + 3], _mm256_madd_epi16(_mm256_maddubs_epi16(x_3, wv), ones));
                    }
                }
                for (int r = 0; r < EE_R; r++)
                    for (int c = 0; c < EE_C; c++)
                        ee_store(ee_hsum8(acc[EE_C * r + c]), b, o0 + r, bias_shift, out_shift, lut, o8, o32,
                                 (size_t)(n0 + c) * O + o0 + r);
            } else {
                for (int r = 0; r < R; r++)
                    for (int c = 0; c < C; c++) {
                        __m256i a = _mm256_setzero_si256();
                        for (int k = 0; k < nfull + has_tail; k++) {
                            const int wo = k < nfull ? 32 * k : I - 32;
                            __m256i xv = _mm256_loadu_si256((const __m256i *)(Xp + (size_t)(n0 + c) * Ip + 32 * k));
                            __m256i wv = _mm256_loadu_si256((const __m256i *)(W + (size_t)(o0 + r) * I + wo));
                            a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(xv, wv), ones));
                        }
                        ee_store(ee_hsum8(a), b, o0 + r, bias_shift, out_shift, lut, o8, o32,
                                 (size_t)(n0 + c) * O + o0 + r);
                    }
            }
        }
    }
}
#endif

static int ee_has_avx2(void) {
#ifdef EE_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

int ee_has_vnni(void) {
#ifdef EE_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

/* Samples are processed in chunks of EE_NB so that a chunk of inputs stays in L1 while every
   row of W streams past it (without chunking, all of X was re-read from L2 per 4 rows of W). */
#ifndef EE_NB
#define EE_NB 32
#endif

/* W [P, O, I], b [P, O], X [shared ? 1 : P, B, I]; out8 [P, B, O] (lut != NULL) or out32.
   scratch: (shared ? 1 : P) * B * (I + 64) bytes. x_nonneg: every x >= 0 (allows the AVX2 u8 path).
   path: -1 auto, else force 0 portable, 1 portable-avx2, 2 avx2-u8, 3 avx512-vnni.
   Returns the path used. */
int ee_dense(const int8_t *W, const int8_t *b, const int8_t *X, int shared, int P, int O, int I, int B,
             int bias_shift, int out_shift, const int8_t *lut, int8_t *out8, int32_t *out32,
             uint8_t *scratch, int nthreads, int path, int x_nonneg) {
    const int nx = shared ? 1 : P;
    if (nthreads < 1) nthreads = 1;
    if (path < 0) {
        if (ee_has_vnni()) path = 3;
        else if (ee_has_avx2()) path = (x_nonneg && I >= 32) ? 2 : 1;
        else path = 0;
    }
    if ((path == 3 && !ee_has_vnni()) || ((path == 1 || path == 2) && !ee_has_avx2())
        || (path == 2 && (!x_nonneg || I < 32))) return -1;
#ifdef EE_X86
    if (path == 3) {
        const long long total = (long long)nx * B * I;
        #pragma omp parallel for num_threads(nthreads) schedule(static)
        for (long long i = 0; i < total; i++) scratch[i] = (uint8_t)X[i] ^ 0x80u;
        #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
        for (int p = 0; p < P; p++) {
            const uint8_t *xu = scratch + (shared ? 0 : (size_t)p * B * I);
            size_t oo = (size_t)p * B * O;
            for (int nc = 0; nc < B; nc += EE_NB) {
                const int nb = B - nc < EE_NB ? B - nc : EE_NB;
                const size_t oc = oo + (size_t)nc * O;
                ee_genome_vnni(W + (size_t)p * O * I, b + (size_t)p * O, xu + (size_t)nc * I, O, I, nb,
                               bias_shift, out_shift, lut, lut ? out8 + oc : NULL, lut ? NULL : out32 + oc);
            }
        }
        return 3;
    }
    if (path == 2) {
        const int nfull = I / 32, Ip = 32 * (nfull + 1);
        const long long rows = (long long)nx * B;
        #pragma omp parallel for num_threads(nthreads) schedule(static)
        for (long long r = 0; r < rows; r++) {
            const int8_t *x = X + (size_t)r * I;
            uint8_t *d = scratch + (size_t)r * Ip;
            memcpy(d, x, (size_t)nfull * 32);
            for (int j = 0; j < 32; j++) {
                int src = I - 32 + j;
                d[32 * nfull + j] = src >= 32 * nfull ? (uint8_t)x[src] : 0;
            }
        }
        #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
        for (int p = 0; p < P; p++) {
            const uint8_t *xp = scratch + (shared ? 0 : (size_t)p * B * Ip);
            size_t oo = (size_t)p * B * O;
            for (int nc = 0; nc < B; nc += EE_NB) {
                const int nb = B - nc < EE_NB ? B - nc : EE_NB;
                const size_t oc = oo + (size_t)nc * O;
                ee_genome_avx2(W + (size_t)p * O * I, b + (size_t)p * O, xp + (size_t)nc * Ip, O, I, nb,
                               bias_shift, out_shift, lut, lut ? out8 + oc : NULL, lut ? NULL : out32 + oc);
            }
        }
        return 2;
    }
#endif
    #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int p = 0; p < P; p++) {
        const int8_t *x = X + (shared ? 0 : (size_t)p * B * I);
        size_t oo = (size_t)p * B * O;
#ifdef EE_X86
        if (path == 1)
            ee_genome_scalar_avx2(W + (size_t)p * O * I, b + (size_t)p * O, x, O, I, B, bias_shift, out_shift,
                                  lut, lut ? out8 + oo : NULL, lut ? NULL : out32 + oo);
        else
#endif
        ee_genome_scalar(W + (size_t)p * O * I, b + (size_t)p * O, x, O, I, B, bias_shift, out_shift, lut,
                         lut ? out8 + oo : NULL, lut ? NULL : out32 + oo);
    }
    return path;
}
"""
