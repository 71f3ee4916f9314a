package org.spectralpeft.fourierft;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.spectralpeft.core.Checks;

/**
 * Many FourierFT adapters of one layer shape (d_out × d_in), registered by id, for forwards in which every token
 * uses its own adapter ({@link FourierFTBackend#forward(FourierFTAdapterPool, int[], org.spectralpeft.core.HostArray,
 * int, org.spectralpeft.core.HostArray)}). Adapters of equal index sets (PEFT's randperm depends only on the
 * shape, the seed and n) share one index set ({@link #indexSets()}), whatever their α: the spectral groupings a
 * backend builds are built and held once per index set, not once per adapter, and a call runs one gather (one
 * launch on CUDA) per index set among its tokens. Each adapter keeps its own α (its {@link Adapter#spec()}; adapters
 * of one index set and one α share that instance, which shares the set's tables): the kernels scale each token's
 * gathered sums by its own adapter's α, as the single-adapter path scales them, so each token's bits are its own
 * adapter's alone.
 *
 * <p>Thread-safe. Adapters may be added and removed while forwards run: a call resolves its ids when it starts
 * and uses those adapters to its end; an adapter removed after that still serves that call, and one added after
 * it is seen by the next call. Each adapter's coefficients are copied in, so the caller may reuse its array.
 */
public final class FourierFTAdapterPool {
    /** One registered adapter: its interned spec and index set, its coefficients (a private copy, never written). */
    public static final class Adapter {
        private final int id;
        private final FourierFTSpec spec;
        private final FourierFTSpec indexSet;
        private final float[] coefficients;

        private Adapter(int id, FourierFTSpec spec, FourierFTSpec indexSet, float[] coefficients) {
            this.id = id;
            this.spec = spec;
            this.indexSet = indexSet;
            this.coefficients = coefficients;
        }

        /** @return the id it was added under */
        public int id() {
            return id;
        }

        /** @return its spec (its α), shared with every adapter of the same index set and α in the pool */
        public FourierFTSpec spec() {
            return spec;
        }

        /** @return its index set as the pool groups adapters ({@link FourierFTSpec#indexSet()}: α NaN) */
        FourierFTSpec indexSet() {
            return indexSet;
        }

        /**
         * The coefficients, as the pool holds them (not a copy: read them, never write them).
         *
         * @return n floats
         */
        float[] coefficients() {
            return coefficients;
        }

        /** @return a copy of the n coefficients */
        public float[] coefficientsCopy() {
            return coefficients.clone();
        }
    }

    private final int dOut;
    private final int dIn;
    private final Map<Integer, Adapter> adapters = new ConcurrentHashMap<>();
    /**
     * The adapters of ids below {@link #DENSE_IDS} again ({@code dense.adapters()}), indexed by id (null: none), so
     * that a call resolves them without boxing or hashing. Grown by doubling under the lock; a reader holding an
     * outgrown array sees the pool as it was before the grow, as if its call had started a moment earlier. Elements
     * are read and written through {@link #DENSE} (volatile, as an {@code AtomicReferenceArray}'s), whose reads are
     * typed {@code Adapter}: a read needs no cast, which would load each adapter's header (a cache miss per adapter
     * with thousands in a call).
     */
    private volatile DenseIds dense = new DenseIds(new Adapter[0], new int[0]);
    private static final VarHandle DENSE = MethodHandles.arrayElementVarHandle(Adapter[].class);
    /**
     * Beside the dense adapters, each dense id's index set as the number of its {@link Interned} (written before the
     * adapter is published), so that a call groups its adapters by index set without reading each adapter (a cache
     * and often a TLB miss per adapter with thousands in a call; {@link #setNumberOf}). Both arrays in one object, so
     * that a reader takes them from one generation.
     */
    private record DenseIds(Adapter[] adapters, int[] sets) {
    }
    private static final VarHandle DENSE_SETS = MethodHandles.arrayElementVarHandle(int[].class);
    /** The live index sets by number ({@link Interned#number}), each as {@link FourierFTSpec#indexSet()}. */
    private final Map<Integer, FourierFTSpec> setsByNumber = new ConcurrentHashMap<>();
    /** The next index set's number; numbers are not reused. */
    private int nextSetNumber;
    /** Ids below this are also kept in {@link #dense}: 8 MB of references at most. */
    static final int DENSE_IDS = 1 << 20;
    /** Each distinct index set once ({@link FourierFTSpec#indexSet()}: α NaN), with how many adapters use it. */
    private final Map<FourierFTSpec, Interned> specs = new ConcurrentHashMap<>();
    private final AtomicLong coefficientBytes = new AtomicLong();
    private final AtomicLong version = new AtomicLong();
    /** The batch resolved last, for a call with the same ids while the version is unchanged ({@link ResolvedBatch}). */
    volatile ResolvedBatch lastResolved;

    /** An index set in use: its number, and per α among its adapters the spec they share. */
    private static final class Interned {
        final FourierFTSpec spec;
        final int number;
        /**
         * α's bits → the spec of the set's adapters of that α, with their count; empty once the set has no adapter.
         * Guarded by the pool's lock.
         */
        final Map<Integer, Scaled> byAlpha = new java.util.HashMap<>();

        Interned(FourierFTSpec spec, int number) {
            this.spec = spec;
            this.number = number;
        }
    }

    /** The spec an index set's adapters of one α share, and how many they are. */
    private static final class Scaled {
        final FourierFTSpec spec;
        int users;

        Scaled(FourierFTSpec spec) {
            this.spec = spec;
        }
    }

    /**
     * An empty pool for layers of one shape.
     *
     * @param dOut out_features, at least 1
     * @param dIn in_features, at least 1
     */
    public FourierFTAdapterPool(int dOut, int dIn) {
        Checks.positive(dOut, "dOut");
        Checks.positive(dIn, "dIn");
        this.dOut = dOut;
        this.dIn = dIn;
    }

    /** @return out_features of every adapter */
    public int dOut() {
        return dOut;
    }

    /** @return in_features of every adapter */
    public int dIn() {
        return dIn;
    }

    /**
     * Registers an adapter.
     *
     * @param id its id, at least 0 (−1 means "no adapter" in a forward's ids)
     * @param spec its spec, of this pool's shape
     * @param coefficients its n coefficients, finite; copied
     * @throws IllegalArgumentException if an argument is null or invalid, the shape differs, or the id is taken
     */
    public void add(int id, FourierFTSpec spec, float[] coefficients) {
        Checks.notNull(spec, "spec");
        Checks.notNull(coefficients, "coefficients");
        Checks.require(id >= 0, "adapter id " + id + " is negative; ids are at least 0 (−1 marks tokens without one)");
        Checks.require(spec.dOut() == dOut && spec.dIn() == dIn, "adapter " + id + " is " + spec.dOut() + " x "
                + spec.dIn() + " but the pool holds " + dOut + " x " + dIn + " adapters");
        Checks.finiteVector("coefficients", coefficients, spec.n());
        synchronized (specs) {
            Checks.require(!adapters.containsKey(id), "adapter id " + id + " is already in the pool; remove it first");
            Interned interned = specs.computeIfAbsent(spec.indexSet(), s -> new Interned(s, nextSetNumber++));
            if (interned.byAlpha.isEmpty()) { // the set's first adapter
                setsByNumber.put(interned.number, interned.spec);
            }
            Scaled scaled = interned.byAlpha.computeIfAbsent(Float.floatToIntBits(spec.alpha()),
                    bits -> new Scaled(interned.spec.withAlpha(spec.alpha())));
            scaled.users++;
            Adapter a = new Adapter(id, scaled.spec, interned.spec, coefficients.clone());
            adapters.put(id, a);
            if (id < DENSE_IDS) {
                DenseIds d = denseCovering(id);
                DENSE_SETS.setVolatile(d.sets(), id, interned.number); // before the adapter: see setNumberOf
                DENSE.setVolatile(d.adapters(), id, a);
            }
            coefficientBytes.addAndGet(bytesOf(spec));
            version.incrementAndGet();
        }
    }

    /**
     * Removes an adapter; calls that already resolved it finish with it.
     *
     * @param id its id
     * @throws IllegalArgumentException if no adapter has that id
     */
    public void remove(int id) {
        synchronized (specs) {
            Adapter a = adapters.remove(id);
            Checks.require(a != null, "adapter id " + id + " is not in the pool");
            if (id < DENSE_IDS) {
                DENSE.setVolatile(dense.adapters(), id, null);
            }
            Interned interned = specs.get(a.indexSet);
            int alphaBits = Float.floatToIntBits(a.spec.alpha());
            if (--interned.byAlpha.get(alphaBits).users == 0) {
                interned.byAlpha.remove(alphaBits);
            }
            if (interned.byAlpha.isEmpty()) {
                specs.remove(a.indexSet);
                setsByNumber.remove(interned.number);
            }
            coefficientBytes.addAndGet(-bytesOf(a.spec));
            version.incrementAndGet();
        }
    }

    /**
     * @param id an id
     * @return whether an adapter has it
     */
    public boolean contains(int id) {
        return adapters.containsKey(id);
    }

    /**
     * The adapter of an id.
     *
     * @param id an id
     * @return the adapter
     * @throws IllegalArgumentException if no adapter has that id
     */
    public Adapter adapter(int id) {
        Adapter a = adapters.get(id);
        Checks.require(a != null, "adapter id " + id + " is not in the pool");
        return a;
    }

    /**
     * @param a an adapter of this pool, as a call resolved it
     * @return whether it is still the one registered under its id (not removed, nor removed and replaced)
     */
    public boolean holds(Adapter a) {
        Checks.notNull(a, "adapter");
        return adapters.get(a.id) == a;
    }

    /** @return the number of adapters */
    public int size() {
        return adapters.size();
    }

    /** @return the number of distinct index sets among them (one index set under several α's counts once) */
    public int indexSets() {
        return specs.size();
    }

    /**
     * What the pool holds on the host: every adapter's coefficients (4·n bytes each) and, once per index set, its
     * indices (8·n bytes). The groupings a backend builds per index set come on top, once per set.
     *
     * @return bytes
     */
    public long bytes() {
        long indexBytes = 0;
        for (FourierFTSpec s : specs.keySet()) {
            indexBytes += 8L * s.n();
        }
        return coefficientBytes.get() + indexBytes;
    }

    /**
     * The bytes one adapter of {@code spec} adds to {@link #bytes()} once its index set is held: its coefficients.
     *
     * @param spec the adapter's spec
     * @return 4·n
     */
    public static long bytesOf(FourierFTSpec spec) {
        Checks.notNull(spec, "spec");
        return 4L * spec.n();
    }

    /** @return a count of the adds and removes so far: a backend's device copy is current while it is unchanged */
    public long version() {
        return version.get();
    }

    /** The dense arrays, grown to hold {@code id}; call with the lock held. */
    private DenseIds denseCovering(int id) {
        DenseIds d = dense;
        if (id < d.adapters().length) {
            return d;
        }
        int length = Math.min(DENSE_IDS, Math.max(64, Math.max(2 * d.adapters().length, Integer.highestOneBit(id) << 1)));
        Adapter[] adapters = new Adapter[length];
        int[] sets = new int[length];
        for (int i = 0; i < d.adapters().length; i++) {
            sets[i] = (int) DENSE_SETS.getVolatile(d.sets(), i);
            adapters[i] = (Adapter) DENSE.getVolatile(d.adapters(), i);
        }
        DenseIds grown = new DenseIds(adapters, sets);
        dense = grown; // published by the volatile write
        return grown;
    }

    /**
     * The index set's number of the adapter {@code a} that a call found under {@code id}, without reading {@code a}:
     * the number written for the id, confirmed by reading the id's adapter again after it (still {@code a}: the
     * number is a's, since a replacement writes its number only after the removal that a second read would see).
     *
     * @param id a dense id whose adapter the call read as {@code a}
     * @param a that adapter
     * @return the number, or −1 where it cannot be confirmed (then read {@code a.spec()})
     */
    int setNumberOf(int id, Adapter a) {
        if (id < 0 || id >= DENSE_IDS) {
            return -1;
        }
        DenseIds d = dense; // both arrays of one generation
        if (id >= d.adapters().length) {
            return -1;
        }
        int number = (int) DENSE_SETS.getVolatile(d.sets(), id);
        return (Adapter) DENSE.getVolatile(d.adapters(), id) == a ? number : -1;
    }

    /**
     * @param number an index set's number ({@link #setNumberOf})
     * @return its index set ({@link FourierFTSpec#indexSet()}) while an adapter of the pool uses it, else null
     */
    FourierFTSpec setOfNumber(int number) {
        return setsByNumber.get(number);
    }

    /**
     * A token's adapter, as a call resolves it ({@link ResolvedBatch}).
     *
     * @param token the token, for the message
     * @param id its id, not −1
     * @return the adapter
     * @throws IllegalArgumentException naming the token if its id is not in the pool
     */
    Adapter adapterOfToken(int token, int id) {
        Adapter a;
        if (id < 0) {
            a = null;
        } else if (id < DENSE_IDS) {
            Adapter[] d = dense.adapters();
            a = id < d.length ? (Adapter) DENSE.getVolatile(d, id) : null;
        } else {
            a = adapters.get(id);
        }
        if (a == null) {
            throw new IllegalArgumentException("adapterIds[" + token + "] = " + id + " is "
                    + (id < -1 ? "negative (only −1, no adapter, is allowed)" : "not in the pool (removed, or never added)"));
        }
        return a;
    }
}
