/**
 * Shared CPU pieces every adapter family's CPU backend uses: real and complex FFTs over JTransforms (float,
 * or double where float would lose accuracy) and a pool of them, the row-major GEMM over the native or Java
 * BLAS, and fixed-chunk parallel loops. Public only for the families' packages;
 * not API (no javadoc is published for it).
 */
package org.spectralpeft.cpu;
