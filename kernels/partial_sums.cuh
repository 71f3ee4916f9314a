// The sum of partial results of a product split over its inner dimension, added in part order: one place for the
// order every such sum takes (common.cu's spectralpeft_sum_parts, FouRA's gate passes), so that they agree bit for bit.
#pragma once

// parts[i] + parts[stride + i] + … + parts[(count − 1)·stride + i], added left to right.
__device__ __forceinline__ float sum_of_parts(const float* parts, long long i, int count, long long stride) {
    float sum = parts[i];
    for (int p = 1; p < count; ++p) sum += parts[p * stride + i];
    return sum;
}
