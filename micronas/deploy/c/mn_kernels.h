/* micronas int8 kernels: TFLite Micro's reference integer semantics (bit-exact), NHWC.
 * SIMD with the ACLE intrinsics __sxtb16/__smlad/__smlabb where the core has the DSP
 * extension (__ARM_FEATURE_DSP), plain C otherwise (Cortex-M0+).
 * Convolution and fully-connected biases carry the input offset folded in
 * (bias + in_off * sum of the channel's weights; the code generator computes them), and
 * convolution weight rows are zero-padded to a multiple of 4. */
#ifndef MN_KERNELS_H
#define MN_KERNELS_H
#include <stdint.h>

typedef struct {
  int32_t in_off, out_off, act_min, act_max;
  int32_t fast; /* 1: every accumulator is below 2^29 in magnitude and every shift negative */
} mn_q;

void mn_conv(const int8_t *in, int ih, int iw, int ic, const int8_t *w, const int32_t *bias,
             int oc, int kh, int kw, int stride_h, int stride_w, int pad_h, int pad_w, int8_t *out, int oh,
             int ow, const mn_q *q, const int32_t *mult, const int32_t *shift, int16_t *col);
void mn_dwconv(const int8_t *in, int ih, int iw, int c, const int8_t *w, const int32_t *bias,
               int kh, int kw, int stride_h, int stride_w, int pad_h, int pad_w, int8_t *out, int oh, int ow,
               const mn_q *q, const int32_t *mult, const int32_t *shift);
void mn_fc(const int8_t *in, int n, const int8_t *w, const int32_t *bias, int m, int8_t *out,
           const mn_q *q, int32_t mult, int32_t shift);
void mn_pool(const int8_t *in, int ih, int iw, int c, int kh, int kw, int stride_h, int stride_w, int pad_h,
             int pad_w, int8_t *out, int oh, int ow, int kind, int32_t act_min, int32_t act_max);
void mn_add(const int8_t *a, const int8_t *b, int n, int8_t *out, int32_t a_off, int32_t b_off,
            int32_t out_off, int left_shift, int32_t a_mult, int32_t a_shift, int32_t b_mult,
            int32_t b_shift, int32_t out_mult, int32_t out_shift, int32_t act_min,
            int32_t act_max);
void mn_concat(const int8_t *in, int pixels, int c_in, int8_t *out, int c_out, int offset);
void mn_clamp(const int8_t *in, int n, int8_t *out, int32_t lo, int32_t hi);
void mn_pad(const int8_t *in, int ih, int iw, int c, int8_t *out, int oh, int ow, int top,
            int left, int8_t value);
void mn_resize_bilinear(const int8_t *in, int ih, int iw, int c, int8_t *out, int oh, int ow);
void mn_mark(int layer);
#endif
