// The few OpenBLAS entry points qlora uses, declared here so the build does not depend on where a
// distribution installs cblas.h (Debian: /usr/include/x86_64-linux-gnu/openblas-pthread/). Links -lopenblas.
#ifndef QLORA_COPENBLAS_H
#define QLORA_COPENBLAS_H

enum QLoRACBLASOrder { QLoRACBLASRowMajor = 101, QLoRACBLASColMajor = 102 };
enum QLoRACBLASTranspose { QLoRACBLASNoTrans = 111, QLoRACBLASTrans = 112 };

void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
void cblas_sgemv(int order, int trans, int m, int n, float alpha, const float *a, int lda, const float *x, int incx,
                 float beta, float *y, int incy);
void openblas_set_num_threads(int threads);
int openblas_get_num_threads(void);

#endif
