/**
 * TLoRA (transformed low-rank adaptation via tensor decomposition): W' = W0·T + s·Δ with T a tensor-ring
 * transform of the input features and Δ a compact residual. {@link org.spectralpeft.tlora.TLoRASpec} describes a
 * layer, {@link org.spectralpeft.tlora.TLoRAParameters} holds its cores in the authors' layouts, and a
 * {@link org.spectralpeft.tlora.TLoRABackend} applies it without forming T (DESIGN.md's TLoRA section).
 */
package org.spectralpeft.tlora;
