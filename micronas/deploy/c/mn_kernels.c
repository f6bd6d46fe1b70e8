/* micronas int8 kernels (see mn_kernels.h). Written for micronas; the arithmetic follows
 * TFLite Micro's reference kernels and gemmlowp's fixed-point helpers so results are
 * bit-exact with the TFLM interpreter. */
#include "mn_kernels.h"
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MN_DSP 1
#endif

/* memcpy / memset for builds without a C library (micronas's emulator links with
 * -nostdlib -DMN_NO_LIBC). Anywhere else the C library's are used: defining them here would
 * replace them, and at -O2 / -Os GCC turns these very loops into calls to memset / memcpy,
 * so they would call themselves (hence also the optimize attribute). */
#ifdef MN_NO_LIBC
#define MN_NO_DISTRIBUTE __attribute__((optimize("no-tree-loop-distribute-patterns")))
MN_NO_DISTRIBUTE void *memcpy(void *d, const void *s, unsigned n) {
  uint8_t *dd = d;
  const uint8_t *ss = s;
  while (n--) *dd++ = *ss++;
  return d;
}
MN_NO_DISTRIBUTE void *memset(void *d, int v, unsigned n) {
  uint8_t *dd = d;
  while (n--) *dd++ = (uint8_t)v;
  return d;
}
#endif

/* Layer boundary marker: the emulator hooks its address. */
void __attribute__((noinline)) mn_mark(int layer) { __asm__ volatile("" ::"r"(layer)); }

/* gemmlowp's SaturatingRoundingDoublingHighMul: (a * b + nudge) / 2^31 with a nudge of 2^30
 * (a * b >= 0) or 1 - 2^30 and truncating division equals floor((a * b + 2^30) / 2^31), one
 * 64-bit multiply-add and shift. */
static inline int32_t srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  return (int32_t)(((int64_t)a * (int64_t)b + (1ll << 30)) >> 31);
}

static inline int32_t rdbpot(int32_t x, int exponent) {
  int32_t mask = (int32_t)((1ll << exponent) - 1);
  int32_t remainder = x & mask;
  int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLM's MultiplyByQuantizedMultiplier. */
static inline int32_t mbqm(int32_t x, int32_t m, int shift) {
  int left = shift > 0 ? shift : 0;
  int right = shift > 0 ? 0 : -shift;
  return rdbpot(srdhm(x * (1 << left), m), right);
}

static inline int8_t clamp8(int32_t v, int32_t lo, int32_t hi) {
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return (int8_t)v;
}

#ifdef MN_DSP
static inline int32_t smmulr(int32_t a, int32_t b) {
  int32_t r;
  __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
#endif

/* Requantisation of a per-channel accumulator (multiplier m > 0) to int8, out_off added and
 * clamped to [lo, hi]. Fast path (|acc| < 2^29, shift < 0; always taken when the code
 * generator has proven both for the layer: fast = mn_q.fast):
 *  - srdhm(acc, m) = floor((acc m + 2^30) / 2^31) = floor((2 acc m + 2^31) / 2^32): one
 *    SMMULR on DSP cores; from 16-bit halves on Cortex-M0+ (no 32 x 32 -> 64 multiply):
 *    acc = ah 2^16 + al, m = mh 2^16 + ml: 2 ah mh + floor((al mh + ah ml + (al ml >> 16)
 *    + 2^14) / 2^15), the unsigned al mh split off so that no sum overflows;
 *  - TFLM's rounding right shift of r by e = -shift (half away from zero), plus out_off:
 *    ((((r + (r >> 31)) >> (e - 1)) + 1 + 2 out_off) >> 1, where e - 1 = ~shift.
 * k1 = 2 out_off + 1. */
#ifdef MN_DSP
static int32_t __attribute__((noinline)) mbqm_slow(int32_t acc, int32_t m, int32_t shift) {
  return mbqm(acc, m, shift);
}
#else
#define mbqm_slow mbqm
#endif

static inline __attribute__((always_inline)) int8_t rq(int32_t acc, int32_t m, int32_t shift,
                                                       int32_t k1, int32_t out_off, int32_t lo,
                                                       int32_t hi, int fast) {
  int32_t v;
  if (fast || __builtin_expect(shift < 0 && m >= 0 && (uint32_t)(acc + (1 << 29)) < (1u << 30), 1)) {
#ifdef MN_DSP
    int32_t r = smmulr(acc * 2, m);
#else
    int32_t ah = acc >> 16, mh = (int32_t)((uint32_t)m >> 16);
    uint32_t al = (uint32_t)acc & 0xFFFFu, ml = (uint32_t)m & 0xFFFFu;
    uint32_t p = al * (uint32_t)mh;
    int32_t qq = ah * (int32_t)ml + (int32_t)((al * ml) >> 16) + (1 << 14);
    int32_t r = 2 * ah * mh + (int32_t)(p >> 15) + (((int32_t)(p & 0x7FFFu) + qq) >> 15);
#endif
    v = (((r + (r >> 31)) >> ~shift) + k1) >> 1;
  } else {
    v = mbqm_slow(acc, m, shift) + out_off;
  }
  return clamp8(v, lo, hi);
}

static inline __attribute__((always_inline)) int32_t mbqm_pos(int32_t acc, int32_t m,
                                                               int32_t shift, int fast) {
  (void)fast;
  return mbqm(acc, m, shift);
}

static inline __attribute__((always_inline)) int8_t requant8f(int32_t acc, int32_t m,
                                                              int32_t shift, const mn_q *q,
                                                              int fast) {
  return rq(acc, m, shift, 2 * q->out_off + 1, q->out_off, q->act_min, q->act_max, fast);
}
#define requant8(acc, m, shift, q) requant8f(acc, m, shift, q, 0)

static inline uint32_t load32(const void *p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

static inline void store32(void *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }

#ifdef MN_DSP
/* SXTB16 with the operand rotated by 8 (one instruction, as CMSIS-NN does). */
static inline uint32_t sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
/* Bytes are copied in words (the DSP cores load and store unaligned words). */
static void copy8(int8_t *dst, const int8_t *src, int n) {
  for (; n >= 4; n -= 4, dst += 4, src += 4) store32(dst, load32(src));
  while (n-- > 0) *dst++ = *src++;
}
static inline uint32_t sxtab16_ror8(uint32_t a, uint32_t x) {
  uint32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  return r;
}
/* Position of k in the im2col row: each group of four is stored (0, 2, 1, 3), the order
 * SXTB16 and SXTB16 ROR #8 unpack a word of four weights in. */
#define MN_PERM(k) (((k) & ~3) | (((k) & 1) << 1) | (((k) >> 1) & 1))
#else
static void copy8(int8_t *dst, const int8_t *src, int n) {
  if ((((uintptr_t)dst | (uintptr_t)src) & 3) == 0)
    for (; n >= 4; n -= 4, dst += 4, src += 4) *(uint32_t *)dst = *(const uint32_t *)src;
  while (n-- > 0) *dst++ = *src++;
}
#define MN_PERM(k) (k)
#endif

static void fill8(int8_t *dst, int8_t value, int n) {
  while (n > 0 && ((uintptr_t)dst & 3)) {
    *dst++ = value;
    --n;
  }
  uint32_t v = (uint8_t)value * 0x01010101u;
  for (; n >= 4; n -= 4, dst += 4) *(uint32_t *)dst = v;
  while (n-- > 0) *dst++ = value;
}

/* sum over n of x[i] * w[i] */
static inline int32_t dot(const int8_t *x, const int8_t *w, int n) {
  int32_t acc = 0;
#ifdef MN_DSP
  for (; n >= 4; n -= 4, x += 4, w += 4) {
    uint32_t xa = load32(x), wa = load32(w);
    acc = __smlad(__sxtb16(xa), __sxtb16(wa), acc);
    acc = __smlad(sxtb16_ror8(xa), sxtb16_ror8(wa), acc);
  }
#endif
  while (n-- > 0) acc += (int32_t)*x++ * (int32_t)*w++;
  return acc;
}

static inline void window(int o, int stride, int pad, int k, int size, int *start, int *k0,
                          int *k1) {
  int s = o * stride - pad;
  *start = s;
  *k0 = s < 0 ? -s : 0;
  *k1 = size - s < k ? size - s : k;
}

/* Two pixels' im2col rows are interleaved in groups of four (pixel 0's values k..k+3, then
 * pixel 1's); within a group the order is MN_PERM. */
#define MN_POS(k) ((((k) & ~3) << 1) | MN_PERM((k) & 3))

/* The receptive field of one output pixel as an im2col row of kk int16 values (at
 * col[MN_POS(k)]); taps outside the input read `pad` (the input zero point). */
static void im2col(const int8_t *in, int ih, int iw, int ic, int kh, int kw, int iy0, int ix0,
                   int16_t pad, int16_t *col) {
  int k = 0;
  for (int ky = 0; ky < kh; ++ky) {
    int iy = iy0 + ky;
    if (iy < 0 || iy >= ih) {
      for (int j = 0; j < kw * ic; ++j, ++k) col[MN_POS(k)] = pad;
      continue;
    }
    int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = iw - ix0 < kw ? iw - ix0 : kw;
    for (int j = 0; j < kx0 * ic; ++j, ++k) col[MN_POS(k)] = pad;
    const int8_t *src = in + (iy * iw + ix0 + kx0) * ic;
    int n = (kx1 - kx0) * ic;
#ifdef MN_DSP
    if ((k & 3) == 0) {
      for (; n >= 4; n -= 4, k += 4, src += 4) {
        uint32_t x = load32(src);
        store32(col + 2 * k, __sxtb16(x));
        store32(col + 2 * k + 2, sxtb16_ror8(x));
      }
    }
#endif
    for (; n > 0; --n, ++k) col[MN_POS(k)] = *src++;
    for (int j = kx1 * ic; j < kw * ic; ++j, ++k) col[MN_POS(k)] = pad;
  }
}

/* GCC's scheduling before register allocation hoists every load of the unrolled GEMM loop
 * and runs out of registers (spills in the inner loop): off for the kernels with one. */
#if defined(__GNUC__) && !defined(__clang__)
#define MN_NO_PRESCHED __attribute__((optimize("no-schedule-insns")))
#else
#define MN_NO_PRESCHED
#endif

#ifdef MN_DSP
/* a += the products of a word of four int8 weights with the four int16 inputs of one pixel
 * (two words, MN_PERM order) */
#define MN_MAC4(a, we, wo, xl, xh) a = __smlad(wo, xh, __smlad(we, xl, a))
#endif

/* Convolution as im2col + GEMM, two output pixels by two output channels per inner loop.
 * w: the weights (OHWI) of each pair of output channels interleaved in groups of four (channel
 * c's k..k+3, then channel c+1's), each row of kk = kh * kw * ic zero-padded to kk4, a
 * multiple of 4; an odd last channel's row plain. bias: the bias with the input offset
 * folded in (bias + in_off * sum of the channel's weights), so the products need no offset
 * and padded taps read the zero point. col: scratch of 2 * kk4 int16. */
static inline __attribute__((always_inline)) void conv_body(const int8_t *in, int ih, int iw, int ic, const int8_t *w, const int32_t *bias,
             int oc, int kh, int kw, int stride_h, int stride_w, int pad_h, int pad_w, int8_t *out, int oh,
             int ow, const mn_q *q, const int32_t *mult, const int32_t *shift, int16_t *col, const int fast) {
  const int kk = kh * kw * ic, kk4 = (kk + 3) & ~3;
  const int16_t pad = (int16_t)-q->in_off;
#ifdef MN_DSP
  const int32_t oo = q->out_off, k1 = 2 * oo + 1, lo = q->act_min, hi = q->act_max;
#endif
  int16_t *col1 = col + 4;
  const int16_t *col_end = col + 2 * kk4;
  for (int k = kk; k < kk4; ++k) col[MN_POS(k)] = col1[MN_POS(k)] = 0;
  const int npix = oh * ow;
  for (int p = 0; p < npix; p += 2) {
    const int two = p + 1 < npix;
    int oy = p / ow, ox = p - oy * ow;
    im2col(in, ih, iw, ic, kh, kw, oy * stride_h - pad_h, ox * stride_w - pad_w, pad, col);
    if (two) {
      if (++ox == ow) ox = 0, ++oy;
      im2col(in, ih, iw, ic, kh, kw, oy * stride_h - pad_h, ox * stride_w - pad_w, pad, col1);
    }
    int8_t *o0 = out + p * oc, *o1 = two ? o0 + oc : o0;
    const int8_t *wp = w;
    int c = 0;
    for (; c + 1 < oc; c += 2) {
      const int16_t *xp = col;
      int32_t a00 = bias[c], a01 = a00, a10 = bias[c + 1], a11 = a10;
#ifdef MN_DSP
      if (kk4 & 4) {
        uint32_t x0l = load32(xp), x0h = load32(xp + 2), x1l = load32(xp + 4), x1h = load32(xp + 6);
        uint32_t wv = load32(wp), we = __sxtb16(wv), wo = sxtb16_ror8(wv);
        MN_MAC4(a00, we, wo, x0l, x0h);
        MN_MAC4(a01, we, wo, x1l, x1h);
        wv = load32(wp + 4), we = __sxtb16(wv), wo = sxtb16_ror8(wv);
        MN_MAC4(a10, we, wo, x0l, x0h);
        MN_MAC4(a11, we, wo, x1l, x1h);
        xp += 8, wp += 8;
      }
      while (xp != col_end) {
        uint32_t x0l = load32(xp), x0h = load32(xp + 2), x1l = load32(xp + 4), x1h = load32(xp + 6);
        uint32_t wv = load32(wp), we = __sxtb16(wv), wo = sxtb16_ror8(wv);
        MN_MAC4(a00, we, wo, x0l, x0h);
        MN_MAC4(a01, we, wo, x1l, x1h);
        wv = load32(wp + 4), we = __sxtb16(wv), wo = sxtb16_ror8(wv);
        MN_MAC4(a10, we, wo, x0l, x0h);
        MN_MAC4(a11, we, wo, x1l, x1h);
        x0l = load32(xp + 8), x0h = load32(xp + 10), x1l = load32(xp + 12), x1h = load32(xp + 14);
        wv = load32(wp + 8), we = __sxtb16(wv), wo = sxtb16_ror8(wv);
        MN_MAC4(a00, we, wo, x0l, x0h);
        MN_MAC4(a01, we, wo, x1l, x1h);
        wv = load32(wp + 12), we = __sxtb16(wv), wo = sxtb16_ror8(wv);
        MN_MAC4(a10, we, wo, x0l, x0h);
        MN_MAC4(a11, we, wo, x1l, x1h);
        xp += 16, wp += 16;
      }
#else
      for (; xp != col_end; xp += 8, wp += 8) {
        for (int j = 0; j < 4; ++j) {
          int32_t x0 = xp[j], x1 = xp[4 + j], w0 = wp[j], w1 = wp[4 + j];
          a00 += x0 * w0;
          a01 += x1 * w0;
          a10 += x0 * w1;
          a11 += x1 * w1;
        }
      }
#endif
      /* all four requantised before the first store (an int8 store may alias the
       * constants: they would be loaded again) */
      const int32_t m0 = mult[c], s0 = shift[c], m1 = mult[c + 1], s1 = shift[c + 1];
#ifndef MN_DSP /* loaded here: hoisted, they would crowd the 8 low registers of the loop */
      const int32_t oo = q->out_off, k1 = 2 * oo + 1, lo = q->act_min, hi = q->act_max;
#endif
      int8_t v00 = rq(a00, m0, s0, k1, oo, lo, hi, fast), v10 = rq(a10, m1, s1, k1, oo, lo, hi, fast);
      int8_t v01 = rq(a01, m0, s0, k1, oo, lo, hi, fast), v11 = rq(a11, m1, s1, k1, oo, lo, hi, fast);
      o0[c] = v00;
      o0[c + 1] = v10;
      if (two) {
        o1[c] = v01;
        o1[c + 1] = v11;
      }
    }
    if (c < oc) {
      int32_t a0 = bias[c], a1 = a0;
      for (int k = 0; k < kk4; ++k) {
        a0 += col[MN_POS(k)] * wp[k];
        a1 += col1[MN_POS(k)] * wp[k];
      }
      o0[c] = requant8f(a0, mult[c], shift[c], q, fast);
      if (two) o1[c] = requant8f(a1, mult[c], shift[c], q, fast);
    }
  }
}

MN_NO_PRESCHED void mn_conv(const int8_t *in, int ih, int iw, int ic, const int8_t *w, const int32_t *bias,
             int oc, int kh, int kw, int stride_h, int stride_w, int pad_h, int pad_w, int8_t *out, int oh,
             int ow, const mn_q *q, const int32_t *mult, const int32_t *shift, int16_t *col) {
  if (q->fast)
    conv_body(in, ih, iw, ic, w, bias, oc, kh, kw, stride_h, stride_w, pad_h, pad_w, out, oh, ow,
              q, mult, shift, col, 1);
  else
    conv_body(in, ih, iw, ic, w, bias, oc, kh, kw, stride_h, stride_w, pad_h, pad_w, out, oh, ow,
              q, mult, shift, col, 0);
}

/* Four channels (DSP) or one of a depthwise output pixel over an nky x nkx window:
 * ip / wp at the window's first tap, in_skip / w_skip from a row's end to the next row. */
#define MN_ALWAYS_INLINE static inline __attribute__((always_inline))
MN_ALWAYS_INLINE void dw_pixel(const int8_t *base, const int8_t *wbase, int c, int nky, int nkx,
                               int in_skip, int w_skip, const int32_t *bias, int8_t *o,
                               const mn_q *q, const int32_t *mult, const int32_t *shift) {
  int ch = 0;
  const int32_t off = q->in_off;
#ifdef MN_DSP
  const uint32_t off2 = ((uint32_t)off & 0xFFFFu) * 0x10001u;
  for (; ch + 3 < c; ch += 4) {
    int32_t a0 = bias[ch], a1 = bias[ch + 1], a2 = bias[ch + 2], a3 = bias[ch + 3];
    const int8_t *ip = base + ch, *wp = wbase + ch;
    for (int ky = 0; ky < nky; ++ky, ip += in_skip, wp += w_skip) {
      for (int kx = 0; kx < nkx; ++kx, ip += c, wp += c) {
        uint32_t x = load32(ip), wv = load32(wp);
        uint32_t x02 = __sxtab16(off2, x), x13 = sxtab16_ror8(off2, x);
        uint32_t w02 = __sxtb16(wv), w13 = sxtb16_ror8(wv);
        a0 = __smlabb(x02, w02, a0);
        a2 = __smlatt(x02, w02, a2);
        a1 = __smlabb(x13, w13, a1);
        a3 = __smlatt(x13, w13, a3);
      }
    }
    const int fast = q->fast;
    int8_t v0 = requant8f(a0, mult[ch], shift[ch], q, fast);
    int8_t v1 = requant8f(a1, mult[ch + 1], shift[ch + 1], q, fast);
    int8_t v2 = requant8f(a2, mult[ch + 2], shift[ch + 2], q, fast);
    int8_t v3 = requant8f(a3, mult[ch + 3], shift[ch + 3], q, fast);
    store32(o + ch, (uint8_t)v0 | (uint32_t)(uint8_t)v1 << 8 | (uint32_t)(uint8_t)v2 << 16 |
                        (uint32_t)(uint8_t)v3 << 24);
  }
#endif
  for (; ch < c; ++ch) {
    int32_t acc = bias[ch];
    const int8_t *ip = base + ch, *wp = wbase + ch;
    for (int ky = 0; ky < nky; ++ky, ip += in_skip, wp += w_skip)
      for (int kx = 0; kx < nkx; ++kx, ip += c, wp += c) acc += ((int32_t)*ip + off) * *wp;
    o[ch] = requant8f(acc, mult[ch], shift[ch], q, q->fast);
  }
}

/* A full k x k window with k known to the compiler (the taps unrolled). */
#define MN_DW_FULL(K)                                                                      \
  static void dw_pixel_##K(const int8_t *base, const int8_t *w, int c, int iw,            \
                           const int32_t *bias, int8_t *o, const mn_q *q,                  \
                           const int32_t *mult, const int32_t *shift) {                    \
    dw_pixel(base, w, c, K, K, (iw - K) * c, 0, bias, o, q, mult, shift);                  \
  }
MN_DW_FULL(3)
MN_DW_FULL(5)
MN_DW_FULL(7)

/* Depthwise convolution (multiplier 1), original bias (the input offset is added to each
 * input: on DSP cores SXTAB16 adds it for free). Windows are clipped to the input (taps
 * outside contribute nothing, as in TFLM); full 3x3 / 5x5 / 7x7 windows run unrolled. */
void mn_dwconv(const int8_t *in, int ih, int iw, int c, const int8_t *w, const int32_t *bias,
               int kh, int kw, int stride_h, int stride_w, int pad_h, int pad_w, int8_t *out, int oh, int ow,
               const mn_q *q, const int32_t *mult, const int32_t *shift) {
  for (int oy = 0; oy < oh; ++oy) {
    int iy0, ky0, ky1;
    window(oy, stride_h, pad_h, kh, ih, &iy0, &ky0, &ky1);
    for (int ox = 0; ox < ow; ++ox) {
      int ix0, kx0, kx1;
      window(ox, stride_w, pad_w, kw, iw, &ix0, &kx0, &kx1);
      int8_t *o = out + (oy * ow + ox) * c;
      const int8_t *base = in + ((iy0 + ky0) * iw + ix0 + kx0) * c;
      const int8_t *wbase = w + (ky0 * kw + kx0) * c;
      int nky = ky1 - ky0, nkx = kx1 - kx0;
      if (nky == kh && nkx == kw && kh == kw) {
        if (kh == 3) { dw_pixel_3(base, wbase, c, iw, bias, o, q, mult, shift); continue; }
        if (kh == 5) { dw_pixel_5(base, wbase, c, iw, bias, o, q, mult, shift); continue; }
        if (kh == 7) { dw_pixel_7(base, wbase, c, iw, bias, o, q, mult, shift); continue; }
      }
      dw_pixel(base, wbase, c, nky, nkx, (iw - nkx) * c, (kw - nkx) * c, bias, o, q, mult,
               shift);
    }
  }
}

/* bias: with the input offset folded in (see mn_conv). Two outputs per pass over the input. */
void mn_fc(const int8_t *in, int n, const int8_t *w, const int32_t *bias, int m, int8_t *out,
           const mn_q *q, int32_t mult, int32_t shift) {
  int j = 0;
  for (; j + 1 < m; j += 2) {
    const int8_t *x = in, *w0 = w + j * n, *w1 = w0 + n;
    int32_t a0 = bias[j], a1 = bias[j + 1];
    int k = n;
#ifdef MN_DSP
    for (; k >= 4; k -= 4, x += 4, w0 += 4, w1 += 4) {
      uint32_t xv = load32(x), xe = __sxtb16(xv), xo = sxtb16_ror8(xv);
      uint32_t v0 = load32(w0), v1 = load32(w1);
      a0 = __smlad(sxtb16_ror8(v0), xo, __smlad(__sxtb16(v0), xe, a0));
      a1 = __smlad(sxtb16_ror8(v1), xo, __smlad(__sxtb16(v1), xe, a1));
    }
#endif
    for (; k > 0; --k) {
      int32_t xv = *x++;
      a0 += xv * *w0++;
      a1 += xv * *w1++;
    }
    int8_t v0 = requant8f(a0, mult, shift, q, q->fast), v1 = requant8f(a1, mult, shift, q, q->fast);
    out[j] = v0;
    out[j + 1] = v1;
  }
  if (j < m) out[j] = requant8f(bias[j] + dot(in, w + j * n, n), mult, shift, q, q->fast);
}

/* kind 0: average (TFLM's rounding of sum / count over the valid window), 1: max. */
void mn_pool(const int8_t *in, int ih, int iw, int c, int kh, int kw, int stride_h, int stride_w, int pad_h,
             int pad_w, int8_t *out, int oh, int ow, int kind, int32_t act_min, int32_t act_max) {
  for (int oy = 0; oy < oh; ++oy) {
    int iy0, ky0, ky1;
    window(oy, stride_h, pad_h, kh, ih, &iy0, &ky0, &ky1);
    for (int ox = 0; ox < ow; ++ox) {
      int ix0, kx0, kx1;
      window(ox, stride_w, pad_w, kw, iw, &ix0, &kx0, &kx1);
      int count = (ky1 - ky0) * (kx1 - kx0);
      int8_t *o = out + (oy * ow + ox) * c;
      for (int ch = 0; ch < c; ++ch) {
        int32_t acc = kind ? -128 : 0;
        for (int ky = ky0; ky < ky1; ++ky) {
          const int8_t *ip = in + ((iy0 + ky) * iw + ix0) * c + ch;
          for (int kx = kx0; kx < kx1; ++kx) {
            int32_t v = ip[kx * c];
            acc = kind ? (v > acc ? v : acc) : acc + v;
          }
        }
        if (!kind) acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
        o[ch] = clamp8(acc, act_min, act_max);
      }
    }
  }
}

void mn_add(const int8_t *a, const int8_t *b, int n, int8_t *out, int32_t a_off, int32_t b_off,
            int32_t out_off, int left_shift, int32_t a_mult, int32_t a_shift, int32_t b_mult,
            int32_t b_shift, int32_t out_mult, int32_t out_shift, int32_t act_min,
            int32_t act_max) {
  for (int i = 0; i < n; ++i) {
    int32_t x = (a[i] + a_off) * (1 << left_shift);
    int32_t y = (b[i] + b_off) * (1 << left_shift);
    int32_t sx = rdbpot(srdhm(x, a_mult), -a_shift);
    int32_t sy = rdbpot(srdhm(y, b_mult), -b_shift);
    int32_t r = rdbpot(srdhm(sx + sy, out_mult), -out_shift) + out_off;
    out[i] = clamp8(r, act_min, act_max);
  }
}

/* One input of a channel concatenation: its c_in channels of every pixel into the output's
 * channels [offset, offset + c_in) (inputs and output share quantisation: a copy). */
void mn_concat(const int8_t *in, int pixels, int c_in, int8_t *out, int c_out, int offset) {
  for (int p = 0; p < pixels; ++p) {
    const int8_t *src = in + p * c_in;
    int8_t *dst = out + p * c_out + offset;
    copy8(dst, src, c_in);
  }
}

/* A standalone RELU / RELU6: clamp to [lo, hi] (input and output share quantisation). */
void mn_clamp(const int8_t *in, int n, int8_t *out, int32_t lo, int32_t hi) {
  for (int i = 0; i < n; ++i) out[i] = clamp8(in[i], lo, hi);
}

void mn_pad(const int8_t *in, int ih, int iw, int c, int8_t *out, int oh, int ow, int top,
            int left, int8_t value) {
  /* the rows above, then per input row its left border, the row, its right border */
  const int row = ow * c, lb = left * c, rb = (ow - iw - left) * c;
  int8_t *dst = out;
  fill8(dst, value, top * row);
  dst += top * row;
  for (int y = 0; y < ih; ++y) {
    fill8(dst, value, lb);
    copy8(dst + lb, in + y * iw * c, iw * c);
    fill8(dst + lb + iw * c, value, rb);
    dst += row;
  }
  fill8(dst, value, (oh - ih - top) * row);
}

/* Bilinear resize to oh x ow (half-pixel centres, no corner alignment): TFLM's
 * ResizeBilinearInteger. Source positions in 1/1024 pixels from a rounded scale; the four
 * neighbours weighted and summed, then divided by 2^20 rounding half away from zero. Input
 * and output share quantisation. Each weight is at most 1536 x 1536 and the four weights'
 * magnitudes sum to at most 2048 x 2048, so with |x| <= 128 every sum stays below 2^30:
 * int32 gives TFLM's int64 result exactly. */
void mn_resize_bilinear(const int8_t *in, int ih, int iw, int c, int8_t *out, int oh, int ow) {
  const int32_t one = 1 << 10;
  const int32_t sy = (one * ih + oh / 2) / oh, sx = (one * iw + ow / 2) / ow;
  for (int y = 0; y < oh; ++y) {
    int32_t vy = y * sy + sy / 2 - (1 << 9);
    int32_t y0 = vy / one, y1 = (vy + one - 1) / one; /* C division truncates, as TFLM's */
    y0 = y0 < 0 ? 0 : y0;
    y1 = y1 > ih - 1 ? ih - 1 : y1;
    int32_t dy = vy - one * y0;
    const int8_t *r0 = in + y0 * iw * c, *r1 = in + y1 * iw * c;
    for (int x = 0; x < ow; ++x) {
      int32_t vx = x * sx + sx / 2 - (1 << 9);
      int32_t x0 = vx / one, x1 = (vx + one - 1) / one;
      x0 = x0 < 0 ? 0 : x0;
      x1 = x1 > iw - 1 ? iw - 1 : x1;
      int32_t dx = vx - one * x0;
      int32_t w00 = (one - dy) * (one - dx), w10 = dy * (one - dx);
      int32_t w01 = (one - dy) * dx, w11 = dy * dx;
      const int8_t *p00 = r0 + x0 * c, *p01 = r0 + x1 * c, *p10 = r1 + x0 * c, *p11 = r1 + x1 * c;
      int8_t *o = out + (y * ow + x) * c;
      for (int ch = 0; ch < c; ++ch) {
        int32_t acc = p00[ch] * w00 + p10[ch] * w10 + p01[ch] * w01 + p11[ch] * w11;
        acc += acc > 0 ? (1 << 19) : -(1 << 19);
        o[ch] = (int8_t)(acc / (1 << 20));
      }
    }
  }
}
