/* Small matrix products without BLAS: C (m, n) := op(A) op(B), row major, for the products a
 * small net's layer makes (loops.pxd's _gemm picks this below _TILE_GEMM multiply-adds).
 *
 * Every element of C is the sum over p of A(i, p) B(p, j) in the order p = 0, 1, ..., k - 1,
 * starting from +0, each product rounded and then added: the rule of loops.pxd's scalar
 * _gemm_small, so one rule gives the bits of every product up to _TILE_GEMM, and they are the
 * same bits at every SIMD level (no FMA contraction: VM_EXACT) and on every x86-64 CPU, which
 * BLAS, whose kernels and their order of sums differ by CPU, does not promise.
 *
 * Why it is faster than BLAS at these sizes: OpenBLAS packs both operands, zeroes C for
 * beta = 0 column by column and then runs its kernel; on a 32 x 32 x 32 product the packing and
 * the zeroing take as many instructions as the arithmetic (csrc/README.md, matmul). Here only
 * B is packed, once, into rows of whole vectors with zeros after column n (the caller's
 * scratch), so that op(B) of any layout, and the last columns, run the same vector code as
 * the rest. Tiles of 4 rows x 2 vectors of C stay in registers through the whole sum; A is
 * read in place, one element broadcast per row and step.
 *
 * Vectors are gcc's vector extension, 32 bytes at every level (two SSE2 registers at the
 * baseline), compiled three times like vmath_loops.h.
 */
#ifndef MICROGRADNET_VMATH_GEMM_H
#define MICROGRADNET_VMATH_GEMM_H

#include <string.h>

typedef float vm_vf32 __attribute__((vector_size(32)));
typedef double vm_vf64 __attribute__((vector_size(32)));

/* The packed B's row length for n columns: a whole number of vectors of W lanes. */
#define VM_TILE_COLS(n, W) (((n) + (W) - 1) / (W) * (W))

/* One tile of C: R rows (1-4) from row i0, V vectors (1-2) from column j0, of which `cols`
 * columns are inside C. R and V are constants where it is called, so gcc unrolls the row and
 * vector loops and keeps the 8 accumulators in registers. */
#define VM_GEMM_TILE(T, SUF, W)                                                           \
    VM_UNUSED VM_TARGET VM_EXACT static inline __attribute__((always_inline)) void         \
    VM_VARIANT(vm_tile_##SUF)(const int R, const int V, Py_ssize_t k, const T *a,         \
                              Py_ssize_t sai, Py_ssize_t sap, const T *bp, Py_ssize_t nb,  \
                              T *c, Py_ssize_t ldc, Py_ssize_t cols)                      \
    {                                                                                     \
        vm_v##SUF acc[4][2];                                                              \
        Py_ssize_t p;                                                                     \
        int r, v;                                                                         \
        for (r = 0; r < 4; r++)                                                           \
            for (v = 0; v < 2; v++)                                                       \
                acc[r][v] = (vm_v##SUF){0};                                               \
        for (p = 0; p < k; p++) {                                                         \
            const vm_v##SUF *brow = (const vm_v##SUF *)(bp + p * nb);                      \
            for (r = 0; r < R; r++) {                                                     \
                const T ar = a[r * sai + p * sap];                                        \
                for (v = 0; v < V; v++)                                                   \
                    acc[r][v] = acc[r][v] + ar * brow[v];                                 \
            }                                                                             \
        }                                                                                 \
        for (r = 0; r < R; r++)                                                           \
            for (v = 0; v < V; v++) {                                                     \
                const Py_ssize_t left = cols - v * W;                                     \
                if (left >= W) {                                                          \
                    memcpy(c + r * ldc + v * W, &acc[r][v], sizeof(vm_v##SUF));            \
                } else if (left > 0) {                                                    \
                    T lanes[W];                                                           \
                    memcpy(lanes, &acc[r][v], sizeof(vm_v##SUF));                          \
                    memcpy(c + r * ldc + v * W, lanes, left * sizeof(T));                  \
                }                                                                         \
            }                                                                             \
    }

/* C (m, n) := op(A) op(B), C dense (row stride ldc) and apart from A and B; op(A)(i, p) =
 * ta ? a[p lda + i] : a[i lda + p], op(B)(p, j) = tb ? b[j ldb + p] : b[p ldb + j]. `bp` is
 * scratch of k * VM_TILE_COLS(n, W) elements, 32-byte aligned. */
#define VM_GEMM(T, SUF, W)                                                                \
    VM_GEMM_TILE(T, SUF, W)                                                               \
    VM_UNUSED VM_TARGET VM_EXACT static void VM_VARIANT(vm_gemm_tiles_##SUF)(              \
        int ta, int tb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const T *restrict a,     \
        Py_ssize_t lda, const T *restrict b, Py_ssize_t ldb, T *restrict c, Py_ssize_t ldc, \
        T *restrict bp)                                                                   \
    {                                                                                     \
        const Py_ssize_t nb = VM_TILE_COLS(n, W);                                         \
        const Py_ssize_t sai = ta ? 1 : lda, sap = ta ? lda : 1;                          \
        Py_ssize_t i, j, p;                                                               \
        Py_ssize_t packed = 0;                                                            \
        if (tb && nb == n) {                                                              \
            vm_transpose_##SUF(b, ldb, bp, n, k); /* no padding: in tiles of vectors */   \
            packed = k;                                                                   \
        }                                                                                 \
        for (p = packed; p < k; p++) {                                                    \
            T *row = bp + p * nb;                                                         \
            if (tb)                                                                       \
                for (j = 0; j < n; j++)                                                   \
                    row[j] = b[j * ldb + p];                                              \
            else                                                                          \
                memcpy(row, b + p * ldb, n * sizeof(T));                                  \
            for (j = n; j < nb; j++)                                                      \
                row[j] = 0;                                                               \
        }                                                                                 \
        for (j = 0; j < nb; j += 2 * W) {                                                 \
            const Py_ssize_t cols = n - j;                                                \
            const T *bj = bp + j;                                                         \
            T *cj = c + j;                                                                \
            if (nb - j >= 2 * W) {                                                        \
                for (i = 0; i + 4 <= m; i += 4)                                           \
                    VM_VARIANT(vm_tile_##SUF)(4, 2, k, a + i * sai, sai, sap, bj, nb,      \
                                              cj + i * ldc, ldc, cols);                   \
                switch (m - i) {                                                          \
                case 3: VM_VARIANT(vm_tile_##SUF)(3, 2, k, a + i * sai, sai, sap, bj, nb,  \
                                                  cj + i * ldc, ldc, cols); break;        \
                case 2: VM_VARIANT(vm_tile_##SUF)(2, 2, k, a + i * sai, sai, sap, bj, nb,  \
                                                  cj + i * ldc, ldc, cols); break;        \
                case 1: VM_VARIANT(vm_tile_##SUF)(1, 2, k, a + i * sai, sai, sap, bj, nb,  \
                                                  cj + i * ldc, ldc, cols); break;        \
                default: break;                                                           \
                }                                                                         \
            } else {                                                                      \
                for (i = 0; i + 4 <= m; i += 4)                                           \
                    VM_VARIANT(vm_tile_##SUF)(4, 1, k, a + i * sai, sai, sap, bj, nb,      \
                                              cj + i * ldc, ldc, cols);                   \
                switch (m - i) {                                                          \
                case 3: VM_VARIANT(vm_tile_##SUF)(3, 1, k, a + i * sai, sai, sap, bj, nb,  \
                                                  cj + i * ldc, ldc, cols); break;        \
                case 2: VM_VARIANT(vm_tile_##SUF)(2, 1, k, a + i * sai, sai, sap, bj, nb,  \
                                                  cj + i * ldc, ldc, cols); break;        \
                case 1: VM_VARIANT(vm_tile_##SUF)(1, 1, k, a + i * sai, sai, sap, bj, nb,  \
                                                  cj + i * ldc, ldc, cols); break;        \
                default: break;                                                           \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }

#define VM_TARGET
#define VM_VARIANT(name) name##_base
VM_GEMM(float, f32, 8)
VM_GEMM(double, f64, 4)
#undef VM_TARGET
#undef VM_VARIANT

#ifdef VM_X86_DISPATCH
#  define VM_TARGET __attribute__((target("avx2,fma")))
#  define VM_VARIANT(name) name##_avx2
VM_GEMM(float, f32, 8)
VM_GEMM(double, f64, 4)
#  undef VM_TARGET
#  undef VM_VARIANT
#  define VM_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#  define VM_VARIANT(name) name##_avx512
VM_GEMM(float, f32, 8)
VM_GEMM(double, f64, 4)
#  undef VM_TARGET
#  undef VM_VARIANT
#endif

/* The entry points (loops.pxd's _gemm): the variant of the CPU's SIMD level. */
#define VM_GEMM_ENTRY(T, SUF)                                                             \
    VM_UNUSED static void vm_gemm_tiles_##SUF(int ta, int tb, Py_ssize_t m, Py_ssize_t n,  \
                                             Py_ssize_t k, const T *a, Py_ssize_t lda,     \
                                             const T *b, Py_ssize_t ldb, T *c,             \
                                             Py_ssize_t ldc, T *bp)                       \
    {                                                                                     \
        VM_PICK(vm_gemm_tiles_##SUF)(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, bp);         \
    }
VM_GEMM_ENTRY(float, f32)
VM_GEMM_ENTRY(double, f64)
#undef VM_GEMM_ENTRY
#undef VM_GEMM
#undef VM_GEMM_TILE

#endif /* MICROGRADNET_VMATH_GEMM_H */
