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

static inline int32_t srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * (int64_t)b;
  int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / (1ll << 31));
}

static inline int32_t rdbpot(int32_t x, int exponent) {
  int32_t mask = (int32_t)((1ll << exponent) - 1);
  int32_t remainder = x & mask;
  int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

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
/* SXTB16 / SXTAB16 with the operand rotated by 8 (one instruction, as CMSIS-NN does). */
static inline uint32_t sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
static inline uint32_t sxtab16_ror8(uint32_t a, uint32_t x) {
  uint32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  return r;
}

static inline uint32_t load32(const int8_t *p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
#endif

/* sum over n of (x[i] + off) * w[i] */
static inline int32_t dot(const int8_t *x, const int8_t *w, int n, int32_t off) {
  int32_t acc = 0;
#ifdef MN_DSP
  uint32_t off2 = ((uint32_t)off & 0xFFFFu) * 0x10001u;
  while (n >= 8) {
    uint32_t xa = load32(x), wa = load32(w), xb = load32(x + 4), wb = load32(w + 4);
    acc = __smlad(__sxtab16(off2, xa), __sxtb16(wa), acc);
    acc = __smlad(sxtab16_ror8(off2, xa), sxtb16_ror8(wa), acc);
    acc = __smlad(__sxtab16(off2, xb), __sxtb16(wb), acc);
    acc = __smlad(sxtab16_ror8(off2, xb), sxtb16_ror8(wb), acc);
    x += 8;
    w += 8;
    n -= 8;
  }
  if (n >= 4) {
    uint32_t xa = load32(x), wa = load32(w);
    acc = __smlad(__sxtab16(off2, xa), __sxtb16(wa), acc);
    acc = __smlad(sxtab16_ror8(off2, xa), sxtb16_ror8(wa), acc);
    x += 4;
    w += 4;
    n -= 4;
  }
#endif
  while (n-- > 0) acc += ((int32_t)*x++ + off) * (int32_t)*w++;
  return acc;
}

static inline void window(int o, int stride, int pad, int k, int size, int *start, int *k0,
                          int *k1) {
  int s = o * stride - pad;
  *start = s;
  *k0 = s < 0 ? -s : 0;
  *k1 = size - s < k ? size - s : k;
}

void mn_conv(const int8_t *in, int ih, int iw, int ic, const int8_t *w, const int32_t *bias,
             int oc, int kh, int kw, int stride_h, int stride_w, int pad_h, int pad_w, int8_t *out, int oh,
             int ow, const mn_q *q, const int32_t *mult, const int32_t *shift) {
  for (int oy = 0; oy < oh; ++oy) {
    int iy0, ky0, ky1;
    window(oy, stride_h, pad_h, kh, ih, &iy0, &ky0, &ky1);
    for (int ox = 0; ox < ow; ++ox) {
      int ix0, kx0, kx1;
      window(ox, stride_w, pad_w, kw, iw, &ix0, &kx0, &kx1);
      int run = (kx1 - kx0) * ic;
      int8_t *o = out + (oy * ow + ox) * oc;
      for (int c = 0; c < oc; ++c) {
        const int8_t *wc = w + c * kh * kw * ic;
        int32_t acc = bias ? bias[c] : 0;
        for (int ky = ky0; ky < ky1; ++ky) {
          acc += dot(in + ((iy0 + ky) * iw + ix0 + kx0) * ic, wc + (ky * kw + kx0) * ic, run,
                     q->in_off);
        }
        o[c] = clamp8(mbqm(acc, mult[c], shift[c]) + q->out_off, q->act_min, q->act_max);
      }
    }
  }
}

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
      for (int ch = 0; ch < c; ++ch) {
        int32_t acc = bias ? bias[ch] : 0;
        for (int ky = ky0; ky < ky1; ++ky) {
          const int8_t *ip = in + ((iy0 + ky) * iw + ix0) * c + ch;
          const int8_t *wp = w + ky * kw * c + ch;
          for (int kx = kx0; kx < kx1; ++kx) acc += ((int32_t)ip[kx * c] + q->in_off) * wp[kx * c];
        }
        o[ch] = clamp8(mbqm(acc, mult[ch], shift[ch]) + q->out_off, q->act_min, q->act_max);
      }
    }
  }
}

void mn_fc(const int8_t *in, int n, const int8_t *w, const int32_t *bias, int m, int8_t *out,
           const mn_q *q, int32_t mult, int32_t shift) {
  for (int j = 0; j < m; ++j) {
    int32_t acc = (bias ? bias[j] : 0) + dot(in, w + j * n, n, q->in_off);
    out[j] = clamp8(mbqm(acc, mult, shift) + q->out_off, q->act_min, q->act_max);
  }
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
    for (int i = 0; i < c_in; ++i) dst[i] = src[i];
  }
}

/* A standalone RELU / RELU6: clamp to [lo, hi] (input and output share quantisation). */
void mn_clamp(const int8_t *in, int n, int8_t *out, int32_t lo, int32_t hi) {
  for (int i = 0; i < n; ++i) out[i] = clamp8(in[i], lo, hi);
}

void mn_pad(const int8_t *in, int ih, int iw, int c, int8_t *out, int oh, int ow, int top,
            int left, int8_t value) {
  for (int i = 0; i < oh * ow * c; ++i) out[i] = value;
  for (int y = 0; y < ih; ++y) {
    const int8_t *src = in + y * iw * c;
    int8_t *dst = out + ((y + top) * ow + left) * c;
    for (int i = 0; i < iw * c; ++i) dst[i] = src[i];
  }
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
