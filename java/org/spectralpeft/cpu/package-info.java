/**
 * Shared CPU pieces every adapter family's CPU backend uses: real and complex FFTs over JTransforms (float,
 * or double where float would lose accuracy) and a pool of them. Public only for the families' packages;
 * not API (no javadoc is published for it).
 */
package org.spectralpeft.cpu;
