/**
 * Internal pieces of the shared CUDA runtime: raw handles, per-call scratch, the cuFFT plan cache and
 * stage timing. Public only so that every adapter family's CUDA package can use them; not API (no
 * javadoc is published for it), and it changes without notice.
 */
package org.spectralpeft.cuda.internal;
