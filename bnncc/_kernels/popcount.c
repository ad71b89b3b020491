/* Bit-packed XNOR-popcount products for the golden model (a fast path of
 * bnncc/layers/mvau.py, which holds the NumPy definition).
 *
 * x:  rows x words, each row a bipolar vector packed little-endian (bit 1 = +1)
 * wt: words x m, the weight matrix packed the same way and transposed so that the
 *     innermost loop runs over output channels (vectorizes to 64-bit popcounts)
 * Padding bits beyond k are zero in both operands and never count as a difference. */
#include <stdint.h>
#include <stdlib.h>

#define BLOCK 32

static void row_agreements(const uint64_t *xr, const uint64_t *wt, int64_t *acc,
                           long m, long words, long k)
{
    long j0 = 0;
    /* blocks of BLOCK channels keep their counters in vector registers */
    for (; j0 + BLOCK <= m; j0 += BLOCK) {
        int64_t a[BLOCK] = {0};
        for (long i = 0; i < words; i++) {
            const uint64_t xi = xr[i];
            const uint64_t *wi = wt + i * m + j0;
            for (long j = 0; j < BLOCK; j++)
                a[j] += __builtin_popcountll(xi ^ wi[j]);
        }
        for (long j = 0; j < BLOCK; j++)
            acc[j0 + j] = k - a[j];
    }
    for (long j = j0; j < m; j++) {
        int64_t a = 0;
        for (long i = 0; i < words; i++)
            a += __builtin_popcountll(xr[i] ^ wt[i * m + j]);
        acc[j] = k - a;
    }
}

/* out[r][j] = number of agreeing bits between row r of x and column j of wt. */
void xnor_popcount(const uint64_t *x, const uint64_t *wt, int64_t *out,
                   long rows, long m, long words, long k)
{
    for (long r = 0; r < rows; r++)
        row_agreements(x + r * words, wt, out + r * m, m, words, k);
}

/* Same, then one threshold per channel, packed: bit j of row r is acc >= t[j].
 * out has rows x ceil(m / 64) words. */
void xnor_popcount_sign(const uint64_t *x, const uint64_t *wt, const int64_t *t,
                        uint64_t *out, long rows, long m, long words, long k)
{
    const long ow = (m + 63) / 64;
    int64_t *acc = malloc(sizeof(int64_t) * (size_t)m);
    for (long r = 0; r < rows; r++) {
        row_agreements(x + r * words, wt, acc, m, words, k);
        uint64_t *o = out + r * ow;
        for (long w = 0; w < ow; w++)
            o[w] = 0;
        for (long j = 0; j < m; j++)
            o[j >> 6] |= (uint64_t)(acc[j] >= t[j]) << (j & 63);
    }
    free(acc);
}

/* Integer product for the non-binary layers: out[r][j] = sum_i x[r][i] * wt[i][j],
 * 16-bit operands, 32-bit sums (the caller checks no sum can overflow). */
void int_gemm(const int16_t *x, const int16_t *wt, int32_t *out,
              long rows, long m, long k)
{
    for (long r = 0; r < rows; r++) {
        int32_t *o = out + r * m;
        for (long j = 0; j < m; j++)
            o[j] = 0;
        for (long i = 0; i < k; i++) {
            const int32_t xi = x[r * k + i];
            const int16_t *wi = wt + i * m;
            if (xi == 0)
                continue;
            for (long j = 0; j < m; j++)
                o[j] += xi * wi[j];
        }
    }
}
