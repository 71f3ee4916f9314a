package org.spectralpeft.fourierft;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.spectralpeft.core.IdTable;
import org.spectralpeft.core.TokenRows;

/**
 * A mixed batch's adapter ids resolved once, when its call starts: the distinct adapters in order of first use,
 * each token's place among them, and the distinct index sets with each adapter's set (a set's grouping is shared;
 * its adapters may differ in α, each scaled by its own spec). A backend groups and looks up per distinct adapter,
 * never per token: with thousands of adapters in a batch the host's bookkeeping would otherwise cost as much as the
 * device's kernels.
 *
 * <p>Built in one pass over the ids, no boxing: ids below about twice the batch's distinct adapters (a pool's usual
 * 0, 1, 2, ...) index an array, others a flat open-addressing table; a run of equal ids (a request's tokens, side by
 * side) skips even that. The pool's map is read once per distinct id; the adapters are grouped by the index-set
 * numbers the pool keeps beside them (an adapter's spec is read only where the pool cannot confirm its number), and
 * their ids are kept in an array of the batch's own. Immutable once built.
 *
 * <p>A pool keeps the batch it resolved last with a copy of its ids and the pool's {@link
 * FourierFTAdapterPool#version()} read before resolving: a call whose ids are the same, while no adapter was added
 * or removed since, gets that batch back after one comparison of the ids (a decode step's batch keeps its adapter
 * per sequence from step to step, and a training step's backward repeats its forward's ids). What a backend derives
 * from a batch alone (its tokens grouped by adapter, and what the backend attaches with {@link #derived}) is then
 * derived once.
 */
public final class ResolvedBatch {
    private final int[] place;
    private final FourierFTAdapterPool.Adapter[] adapters;
    private final int[] adapterIds;
    private final int[] setOfAdapter;
    private final FourierFTSpec[] sets;
    /** The ids it was resolved from (a copy) and the pool's version read before resolving them. */
    private final int[] ids;
    private final long poolVersion;
    /** tokensByAdapter(), made on first use (immutable, so a race makes it twice at worst). */
    private TokenRows.Groups byAdapter;
    /** A backend's derived state ({@link #derived}): one slot, replaced by the last backend to attach one. */
    private volatile Object derived;

    private ResolvedBatch(int[] place, FourierFTAdapterPool.Adapter[] adapters, int[] adapterIds, int[] setOfAdapter,
                          FourierFTSpec[] sets, int[] ids, long poolVersion) {
        this.place = place;
        this.adapters = adapters;
        this.adapterIds = adapterIds;
        this.setOfAdapter = setOfAdapter;
        this.sets = sets;
        this.ids = ids;
        this.poolVersion = poolVersion;
    }

    /**
     * Resolves a batch's ids against a pool.
     *
     * @param pool the pool
     * @param ids one id per token: an adapter's, or −1 for none
     * @return the resolved batch
     * @throws IllegalArgumentException naming the first token whose id is neither −1 nor in the pool
     */
    static ResolvedBatch of(FourierFTAdapterPool pool, int[] ids) {
        long version = pool.version(); // before reading any adapter: a change from here on makes the next call miss
        ResolvedBatch last = lastIfSame(pool, ids, version);
        if (last != null) {
            return last;
        }
        ResolvedBatch batch = resolve(pool, ids, version);
        pool.lastResolved = batch;
        return batch;
    }

    /**
     * The pool's last resolved batch where its ids are these and the pool has not changed since, as {@link #of} would
     * give it back without resolving; null otherwise. For a backend that has a cheaper way than resolving for a
     * batch it has not seen, and takes the cached one where there is one.
     *
     * @param pool the pool
     * @param ids one id per token
     * @return that batch, or null
     */
    public static ResolvedBatch cached(FourierFTAdapterPool pool, int[] ids) {
        return lastIfSame(pool, ids, pool.version());
    }

    private static ResolvedBatch lastIfSame(FourierFTAdapterPool pool, int[] ids, long version) {
        ResolvedBatch last = pool.lastResolved;
        return last != null && last.poolVersion == version && Arrays.equals(last.ids, ids) ? last : null;
    }

    private static ResolvedBatch resolve(FourierFTAdapterPool pool, int[] ids, long version) {
        int tokens = ids.length;
        int[] place = new int[tokens];
        int expected = Math.min(tokens, pool.size() + 1);
        // ids below `direct` (a pool's usual 0, 1, 2, ...) find their place in an array indexed by the id, place + 1
        // with 0 for not seen yet; other ids in the hash table. Each made when first needed.
        int direct = (int) Math.min(FourierFTAdapterPool.DENSE_IDS, 2L * expected + 64);
        int[] placeById = null;
        IdTable table = null;
        FourierFTAdapterPool.Adapter[] found = new FourierFTAdapterPool.Adapter[Math.min(tokens, 16)];
        int[] foundIds = new int[found.length];
        int[] foundSets = new int[found.length]; // each one's index set number from the pool, −1: read its spec
        int count = 0;
        int lastId = -1;
        int lastPlace = -1;
        for (int t = 0; t < tokens; t++) {
            int id = ids[t];
            if (id == lastId) { // a run of one adapter's tokens
                place[t] = lastPlace;
                continue;
            }
            if (id == -1) {
                place[t] = -1;
                continue;
            }
            boolean small = id >= 0 && id < direct;
            int at;
            if (small) {
                if (placeById == null) {
                    placeById = new int[direct];
                }
                at = placeById[id] - 1;
            } else {
                if (table == null) {
                    table = new IdTable(expected);
                }
                at = table.get(id);
            }
            if (at < 0) {
                FourierFTAdapterPool.Adapter a = pool.adapterOfToken(t, id);
                if (count == found.length) {
                    found = Arrays.copyOf(found, Math.min(tokens, 2 * count));
                    foundIds = Arrays.copyOf(foundIds, found.length);
                    foundSets = Arrays.copyOf(foundSets, found.length);
                }
                at = count;
                found[count] = a;
                foundSets[count] = pool.setNumberOf(id, a);
                foundIds[count++] = id;
                if (small) {
                    placeById[id] = at + 1;
                } else {
                    table.put(id, at);
                }
            }
            lastId = id;
            lastPlace = at;
            place[t] = at;
        }
        FourierFTAdapterPool.Adapter[] adapters = Arrays.copyOf(found, count);
        // the sets, from the pool's numbers without reading the adapters (an adapter's spec where the pool could not
        // confirm one); adapters of one index set share a spec instance, so a comparison with the last one usually
        // does
        int[] setOfAdapter = new int[count];
        Map<FourierFTSpec, Integer> setIndex = new HashMap<>();
        FourierFTSpec[] sets = new FourierFTSpec[0];
        FourierFTSpec lastSpec = null;
        int lastNumber = -1;
        int lastSet = -1;
        for (int i = 0; i < count; i++) {
            int number = foundSets[i];
            if (number >= 0 && number == lastNumber) {
                setOfAdapter[i] = lastSet;
                continue;
            }
            FourierFTSpec spec = number >= 0 ? pool.setOfNumber(number) : null;
            if (spec == null) {
                spec = adapters[i].indexSet();
            }
            lastNumber = number;
            if (spec != lastSpec) {
                Integer s = setIndex.get(spec); // equal specs from a re-interned set join one group
                if (s == null) {
                    s = sets.length;
                    setIndex.put(spec, s);
                    sets = Arrays.copyOf(sets, s + 1);
                    sets[s] = spec;
                }
                lastSpec = spec;
                lastSet = s;
            }
            setOfAdapter[i] = lastSet;
        }
        return new ResolvedBatch(place, adapters, Arrays.copyOf(foundIds, count), setOfAdapter, sets, ids.clone(),
                version);
    }

    /** @return the number of tokens */
    public int tokens() {
        return place.length;
    }

    /** @return whether no token has an adapter (every id was −1) */
    public boolean isEmpty() {
        return adapters.length == 0;
    }

    /** @return the number of distinct adapters among the tokens */
    public int adapterCount() {
        return adapters.length;
    }

    /**
     * @param i a place, 0 ≤ i &lt; {@link #adapterCount()}
     * @return the distinct adapter at that place (places follow the tokens' first use)
     */
    public FourierFTAdapterPool.Adapter adapter(int i) {
        return adapters[i];
    }

    /**
     * {@code adapter(i).id()} from an array of the batch's own, without reading the adapter.
     *
     * @param i a place, 0 ≤ i &lt; {@link #adapterCount()}
     * @return the id of the adapter at that place
     */
    public int adapterId(int i) {
        return adapterIds[i];
    }

    /**
     * @param t a token
     * @return its adapter's place, or −1 if it has none
     */
    public int place(int t) {
        return place[t];
    }

    /** @return the number of distinct index sets among the adapters */
    public int setCount() {
        return sets.length;
    }

    /**
     * @param s a set, 0 ≤ s &lt; {@link #setCount()}
     * @return its index set (sets follow their adapters' first use): a spec of the set's shape, indices and tables
     *         with α NaN, since its adapters may differ in α; each adapter's scale is {@code adapter(i).spec()}'s
     */
    public FourierFTSpec set(int s) {
        return sets[s];
    }

    /**
     * @param i an adapter's place
     * @return its set
     */
    public int setOf(int i) {
        return setOfAdapter[i];
    }

    /**
     * The tokens that have an adapter, grouped by adapter in place order, each adapter's tokens in token order.
     *
     * @return the tokens, and where each adapter's start
     */
    public TokenRows.Groups tokensByAdapter() {
        TokenRows.Groups g = byAdapter;
        if (g == null) {
            g = TokenRows.bySlot(place, adapters.length);
            byAdapter = g;
        }
        return g;
    }

    /**
     * What a backend derived from this batch alone, kept with it for the next call that gets the same batch back:
     * the value {@code make} gives, made on first use for this key (a later key replaces it).
     *
     * @param key the backend's key (compared by identity), so that two backends do not take each other's state
     * @param make makes it from this batch; its value must not change afterwards
     * @param <T> its type
     * @return the state
     */
    public <T> T derived(Object key, java.util.function.Function<ResolvedBatch, T> make) {
        Object d = derived;
        if (d instanceof Derived e && e.key == key) {
            @SuppressWarnings("unchecked")
            T value = (T) e.value;
            return value;
        }
        T value = make.apply(this);
        derived = new Derived(key, value);
        return value;
    }

    private record Derived(Object key, Object value) {
    }
}
