package org.spectralpeft.foura;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.spectralpeft.foura.cpu.CpuFouRA;

/**
 * How a pool resolves a call's ids: each token's adapter, the distinct adapters in the order of their first
 * tokens, and each one's tokens in token order, for ids held by index (below {@link FouRAAdapterPool#DENSE_IDS})
 * and by hash (above), in runs and scattered, with −1 and removed ids, against a plain resolution by map.
 */
class FouRAAdapterPoolTest {
    private static final FouRASpec SPEC = FouRASpec.of(6, 5, 2, FouRASpec.Transform.DFT, FouRASpec.Gate.NONE, 1f);
    private CpuFouRA cpu;
    private FouRAAdapterPool pool;

    @BeforeEach
    void open() {
        cpu = new CpuFouRA();
        pool = new FouRAAdapterPool(6, 5);
    }

    @AfterEach
    void close() {
        pool.close();
        cpu.close();
    }

    private FouRAFactors factors() {
        return cpu.prepare(SPEC, new float[2 * 5], new float[6 * 2], null);
    }

    @Test
    void aLeaseGroupsTheTokensOfEachAdapterInTheOrderOfTheirFirstTokens() {
        int[] idsInPool = {0, 1, 5, 1000, FouRAAdapterPool.DENSE_IDS - 1, FouRAAdapterPool.DENSE_IDS,
            FouRAAdapterPool.DENSE_IDS + 7, Integer.MAX_VALUE};
        Map<Integer, FouRAFactors> byId = new java.util.HashMap<>();
        for (int id : idsInPool) {
            FouRAFactors f = factors();
            pool.add(id, f);
            byId.put(id, f);
        }
        Random random = new Random(11);
        for (int round = 0; round < 20; round++) {
            int[] ids = new int[1 + random.nextInt(60)];
            for (int t = 0; t < ids.length; t++) {
                boolean repeat = t > 0 && random.nextInt(3) == 0; // runs of one id
                ids[t] = repeat ? ids[t - 1] : random.nextInt(6) == 0 ? -1 : idsInPool[random.nextInt(idsInPool.length)];
            }
            try (FouRAAdapterPool.Lease lease = pool.acquire(ids)) {
                // the plain resolution: first-use order, tokens in order
                List<FouRAFactors> order = new ArrayList<>();
                Map<FouRAFactors, List<Integer>> tokensOf = new IdentityHashMap<>();
                for (int t = 0; t < ids.length; t++) {
                    FouRAFactors f = ids[t] == -1 ? null : byId.get(ids[t]);
                    assertSame(f, lease.perToken()[t], "token " + t + " of " + java.util.Arrays.toString(ids));
                    if (f != null) {
                        if (!tokensOf.containsKey(f)) {
                            order.add(f);
                            tokensOf.put(f, new ArrayList<>());
                        }
                        tokensOf.get(f).add(t);
                    }
                }
                assertArrayEquals(order.toArray(), lease.distinct(), java.util.Arrays.toString(ids));
                org.spectralpeft.core.TokenRows.Groups g = lease.grouping();
                assertTrue(g.starts().length == order.size() + 1 && g.starts()[0] == 0);
                for (int a = 0; a < order.size(); a++) {
                    int[] expected = tokensOf.get(order.get(a)).stream().mapToInt(Integer::intValue).toArray();
                    assertArrayEquals(expected, java.util.Arrays.copyOfRange(g.tokens(), g.starts()[a],
                            g.starts()[a + 1]), "adapter " + a + " of " + java.util.Arrays.toString(ids));
                }
                assertTrue(g.tokens().length == g.starts()[order.size()]);
            }
        }
    }

    @Test
    void aRemovedAdapterStaysOpenUntilTheLastCallThatHoldsItEnds() {
        FouRAFactors f = factors();
        pool.add(1, f);
        FouRAAdapterPool.Lease first = pool.acquire(new int[] {1, 1, -1, 1});
        FouRAAdapterPool.Lease second = pool.acquire(new int[] {1});
        pool.remove(1);
        assertFalse(f.isClosed(), "held by two calls");
        assertThrows(IllegalArgumentException.class, () -> pool.add(2, f), "still the pool's until closed");
        first.close();
        assertFalse(f.isClosed(), "held by one call");
        second.close();
        assertTrue(f.isClosed(), "closed by the last call that held it");
        FouRAFactors kept = factors();
        pool.add(1, kept);
        pool.acquire(new int[] {1}).close();
        assertFalse(kept.isClosed(), "a lease that ends does not close an adapter still in the pool");
    }

    @Test
    void aRefusedCallHoldsNothing() {
        FouRAFactors f = factors();
        pool.add(1, f);
        assertThrows(IllegalArgumentException.class, () -> pool.acquire(new int[] {1, 1, 7}));
        pool.remove(1);
        assertTrue(f.isClosed(), "the refused call left no hold, so removal closes at once");
    }

    @Test
    void removedUnknownAndNegativeIdsAreRefusedNamingTheToken() {
        pool.add(3, factors());
        pool.add(FouRAAdapterPool.DENSE_IDS + 1, factors());
        pool.remove(3);
        for (int[] ids : new int[][] {{-1, 3}, {-1, 4}, {-1, 1 << 19}, {-1, FouRAAdapterPool.DENSE_IDS},
            {-1, -2}, {-1, Integer.MIN_VALUE}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pool.acquire(ids));
            assertTrue(e.getMessage().contains("adapterIds[1] = " + ids[1]), e.getMessage());
            assertTrue(e.getMessage().contains(ids[1] < -1 ? "negative" : "not in the pool"), e.getMessage());
        }
        try (FouRAAdapterPool.Lease lease = pool.acquire(new int[] {-1, -1})) {
            assertTrue(lease.distinct().length == 0 && lease.grouping().tokens().length == 0);
        }
    }
}
