package org.spectralpeft.foura;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import org.spectralpeft.core.Checks;
import org.spectralpeft.core.TokenRows;

/**
 * Many FouRA adapters of one layer shape (d_out × d_in), registered by id as prepared factors, for forwards in
 * which every token uses its own adapter ({@link FouRABackend#forward(FouRAAdapterPool, int[],
 * org.spectralpeft.core.HostArray, int, org.spectralpeft.core.HostArray)}). The adapters may differ in rank,
 * transform, gate and α; their factors must come from the backend that serves the pool.
 *
 * <p>The pool owns the factors it is given: it closes them when they are removed or the pool is closed. Thread-safe.
 * Adapters may be added and removed while forwards run: a call resolves its ids when it starts and holds those
 * adapters to its end; an adapter removed meanwhile stays usable by that call and is closed when the last such
 * call returns; one added after the call started is seen by the next call. (A CUDA device-array call returns once
 * its work is queued; closing the factors waits for the work queued on the device before freeing them, outside
 * the pool's lock, so that other calls' lookups do not wait for it.)
 * Updating an adapter's factors ({@link FouRAFactors#update}) while a forward uses them is not allowed, as for
 * any factors.
 */
public final class FouRAAdapterPool implements AutoCloseable {
    private final int dOut;
    private final int dIn;
    /** Ids below this are also found in {@link #dense}, without boxing or hashing. */
    static final int DENSE_IDS = 1 << 20;

    /**
     * One registered adapter: its factors, and (guarded by the pool) the calls that hold it, whether it was removed
     * while held, and its place in the lease that last resolved it.
     */
    private static final class Entry {
        final FouRAFactors factors;
        int holds;
        boolean retired;
        long lease;
        int place;

        Entry(FouRAFactors factors) {
            this.factors = factors;
        }
    }

    /** The adapters by id. Guarded by this. */
    private final Map<Integer, Entry> byId = new HashMap<>();
    /** The entries of ids below {@link #DENSE_IDS} by id (null where none), grown as ids come. Guarded by this. */
    private Entry[] dense = new Entry[0];
    /** Every entry whose factors the pool still owns (registered, or removed and still held). Guarded by this. */
    private final Map<FouRAFactors, Entry> owned = new IdentityHashMap<>();
    /** Leases made so far: an entry's {@code lease} equal to it means it is placed in the current one. */
    private long leases;
    private long bytes;
    private boolean closed;

    /**
     * An empty pool for layers of one shape.
     *
     * @param dOut out_features, at least 1
     * @param dIn in_features, at least 1
     */
    public FouRAAdapterPool(int dOut, int dIn) {
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
     * Registers an adapter; the pool owns its factors from now on.
     *
     * @param id its id, at least 0 (−1 means "no adapter" in a forward's ids)
     * @param factors its prepared factors, open, of this pool's shape
     * @throws IllegalArgumentException if the factors are null or of another shape, or the id is negative or taken
     * @throws IllegalStateException if the factors or the pool are closed
     */
    public synchronized void add(int id, FouRAFactors factors) {
        Checks.notNull(factors, "factors");
        ensureOpen();
        Checks.require(id >= 0, "adapter id " + id + " is negative; ids are at least 0 (−1 marks tokens without one)");
        FouRASpec spec = factors.spec();
        Checks.require(spec.dOut() == dOut && spec.dIn() == dIn, "adapter " + id + " is " + spec.dOut() + " x "
                + spec.dIn() + " but the pool holds " + dOut + " x " + dIn + " adapters");
        if (factors.isClosed()) {
            throw new IllegalStateException("the factors of adapter " + id + " (" + spec + ") are closed");
        }
        Checks.require(!byId.containsKey(id), "adapter id " + id + " is already in the pool; remove it first");
        Checks.require(!owned.containsKey(factors),
                "these factors are already in the pool under another id; prepare a copy for each id");
        Entry e = new Entry(factors);
        byId.put(id, e);
        owned.put(factors, e);
        if (id < DENSE_IDS) {
            if (id >= dense.length) {
                dense = Arrays.copyOf(dense, Math.min(DENSE_IDS, Math.max(id + 1, 2 * dense.length)));
            }
            dense[id] = e;
        }
        bytes += bytesOf(spec);
    }

    /**
     * Removes an adapter and closes its factors, once the calls that hold it have returned.
     *
     * @param id its id
     * @throws IllegalArgumentException if no adapter has that id
     */
    public void remove(int id) {
        Entry e;
        synchronized (this) {
            e = byId.remove(id);
            Checks.require(e != null, "adapter id " + id + " is not in the pool");
            if (id < dense.length) {
                dense[id] = null;
            }
            bytes -= bytesOf(e.factors.spec());
            if (e.holds > 0) {
                e.retired = true; // closed by the last call that holds it
                return;
            }
        }
        closeOwned(e);
    }

    /**
     * Closes an entry's factors outside the pool's lock (closing device factors waits for the work queued with
     * them, which must not stall the other calls' lookups), then lets the pool forget them.
     */
    private void closeOwned(Entry e) {
        try {
            e.factors.close();
        } finally {
            synchronized (this) {
                owned.remove(e.factors);
            }
        }
    }

    /**
     * @param id an id
     * @return whether an adapter has it
     */
    public synchronized boolean contains(int id) {
        return byId.containsKey(id);
    }

    /**
     * The factors of an id, still owned by the pool (use them, do not close them).
     *
     * @param id an id
     * @return its factors
     * @throws IllegalArgumentException if no adapter has that id
     */
    public synchronized FouRAFactors adapter(int id) {
        Entry e = byId.get(id);
        Checks.require(e != null, "adapter id " + id + " is not in the pool");
        return e.factors;
    }

    /** @return the number of adapters */
    public synchronized int size() {
        return byId.size();
    }

    /**
     * The folded factors the adapters hold where their backend computes (on the device for CUDA): per adapter
     * 4·w·(d_in + d_out + 1) bytes plus its gate's parameters, w = 2r for the DFT and r for the DCT. A rank-16
     * DFT adapter of a 4096 × 4096 layer holds 1 MiB.
     *
     * @return bytes
     */
    public synchronized long bytes() {
        return bytes;
    }

    /**
     * The bytes one adapter of {@code spec} holds in a pool.
     *
     * @param spec the adapter's layer
     * @return bytes
     */
    public static long bytesOf(FouRASpec spec) {
        Checks.notNull(spec, "spec");
        long width = spec.zWidth();
        return 4L * (width * ((long) spec.dIn() + spec.dOut() + 1) + spec.gateLength());
    }

    /** Removes every adapter (closing each once no call holds it); later adds throw. Idempotent. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            for (Integer id : byId.keySet().toArray(new Integer[0])) {
                remove(id);
            }
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("the adapter pool is closed");
        }
    }

    /**
     * The adapters of a call's tokens, resolved once at its start and held until {@link #close()}: what a backend
     * works from (see {@link ValidatingBackend#checkBatch}).
     */
    public final class Lease implements AutoCloseable {
        private final FouRAFactors[] perToken;
        private final Entry[] entries;
        private final FouRAFactors[] held;
        private final int[] slots;
        private TokenRows.Groups grouping;

        private Lease(FouRAFactors[] perToken, Entry[] entries, int[] slots) {
            this.perToken = perToken;
            this.entries = entries;
            this.slots = slots;
            held = new FouRAFactors[entries.length];
            for (int a = 0; a < entries.length; a++) {
                held[a] = entries[a].factors;
            }
        }

        /** @return per token its adapter's factors, or null for −1 (the lease's array: read it, do not write it) */
        public FouRAFactors[] perToken() {
            return perToken;
        }

        /** @return each adapter the call uses, once, in the order of their first tokens */
        public FouRAFactors[] distinct() {
            return held;
        }

        /** @return the tokens of each adapter of {@link #distinct()}, slot a for distinct()[a] (computed once) */
        public TokenRows.Groups grouping() {
            if (grouping == null) {
                grouping = TokenRows.bySlot(slots, held.length);
            }
            return grouping;
        }

        /** Ends the hold; an adapter removed meanwhile is closed once no call holds it. */
        @Override
        public void close() {
            release(entries);
        }
    }

    /**
     * Resolves and holds the adapters of a call's tokens: ids below {@link #DENSE_IDS} by index, others by hash,
     * a run of one id once; each distinct adapter's place once, by identity.
     *
     * @param ids one id per token: an adapter's, or −1 for none
     * @return the lease; close it when the call ends
     * @throws IllegalArgumentException naming the first token whose id is neither −1 nor in the pool
     * @throws IllegalStateException if the pool is closed
     */
    synchronized Lease acquire(int[] ids) {
        ensureOpen();
        long lease = ++leases;
        FouRAFactors[] out = new FouRAFactors[ids.length];
        int[] slots = new int[ids.length];
        List<Entry> held = new ArrayList<>();
        for (int t = 0; t < ids.length; t++) {
            int id = ids[t];
            if (id == -1) {
                slots[t] = -1;
                continue;
            }
            if (t > 0 && id == ids[t - 1]) { // a run of one id: the token before resolved it
                out[t] = out[t - 1];
                slots[t] = slots[t - 1];
                continue;
            }
            Entry e = id >= 0 && id < dense.length ? dense[id] : id >= DENSE_IDS ? byId.get(id) : null;
            if (e == null) {
                for (Entry h : held) { // hold nothing of a refused call
                    h.holds--;
                }
                throw new IllegalArgumentException("adapterIds[" + t + "] = " + id + " is "
                        + (id < -1 ? "negative (only −1, no adapter, is allowed)" : "not in the pool (removed, or never added)"));
            }
            if (e.lease != lease) {
                e.lease = lease;
                e.place = held.size();
                e.holds++;
                held.add(e);
            }
            out[t] = e.factors;
            slots[t] = e.place;
        }
        return new Lease(out, held.toArray(new Entry[0]), slots);
    }

    private void release(Entry[] held) {
        List<Entry> done = new ArrayList<>();
        synchronized (this) {
            for (Entry e : held) {
                if (--e.holds == 0 && e.retired) {
                    done.add(e);
                }
            }
        }
        for (Entry e : done) {
            closeOwned(e);
        }
    }
}
