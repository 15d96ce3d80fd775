//! Consistent hashing for session affinity: a stable 64-bit hash, a hash
//! ring and a Maglev table. Both are built once per endpoint list; lookups
//! take no lock. The hash is stable across processes and versions, so every
//! proxy of a fleet sends the same key to the same endpoint.

/// FNV-1a, then a 64-bit finaliser for avalanche (stable, no per-process seed).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// The murmur3 64-bit finaliser.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A ring of virtual nodes: each endpoint gets points in proportion to its weight.
#[derive(Debug, Clone)]
pub struct Ring {
    points: Vec<(u64, u32)>,
}

/// Points per unit of weight. A fixed count per endpoint (not a fixed ring
/// size) means adding an endpoint only adds its own points: about 1/N of
/// the keys move, and no others.
pub const POINTS_PER_WEIGHT: u64 = 160;
/// Most points on one ring (weights are scaled down above it).
pub const MAX_POINTS: u64 = 1 << 20;

impl Ring {
    /// Builds the ring for endpoints identified by `ids` with `weights`.
    pub fn new(ids: &[String], weights: &[u32]) -> Self {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum::<u64>().max(1);
        let per_weight = POINTS_PER_WEIGHT.min((MAX_POINTS / total).max(1));
        let mut points = Vec::with_capacity((per_weight * total) as usize);
        for (i, (id, w)) in ids.iter().zip(weights).enumerate() {
            let n = (per_weight * u64::from(*w)).max(1);
            for k in 0..n {
                points.push((stable_hash(format!("{id}#{k}").as_bytes()), i as u32));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    /// Endpoint indexes clockwise from `hash`: the first is the owner, the
    /// rest are the fallbacks when it is unavailable.
    pub fn walk(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let start = self.points.partition_point(|(h, _)| *h < hash);
        let n = self.points.len();
        (0..n).map(move |i| self.points[(start + i) % n].1 as usize)
    }
}

/// A Maglev lookup table (prime size): near-perfect balance, minimal disruption.
#[derive(Debug, Clone)]
pub struct Maglev {
    table: Vec<u32>,
}

/// Table size (prime), as Envoy's default.
pub const MAGLEV_SIZE: usize = 65_537;

impl Maglev {
    /// Builds the table for endpoints identified by `ids` with `weights`.
    pub fn new(ids: &[String], weights: &[u32]) -> Self {
        let m = MAGLEV_SIZE as u64;
        let n = ids.len();
        if n == 0 {
            return Self { table: Vec::new() };
        }
        let offsets: Vec<u64> = ids
            .iter()
            .map(|id| stable_hash(id.as_bytes()) % m)
            .collect();
        let skips: Vec<u64> = ids
            .iter()
            .map(|id| stable_hash(format!("{id}/skip").as_bytes()) % (m - 1) + 1)
            .collect();
        let max_w = f64::from(*weights.iter().max().unwrap_or(&1)).max(1.0);
        let mut next = vec![0u64; n];
        let mut credit = vec![0f64; n];
        let mut table = vec![u32::MAX; MAGLEV_SIZE];
        let mut filled = 0;
        'fill: loop {
            for i in 0..n {
                // Weighted Maglev: an endpoint takes a turn once it has earned a full credit.
                credit[i] += f64::from(weights[i]) / max_w;
                if credit[i] < 1.0 {
                    continue;
                }
                credit[i] -= 1.0;
                loop {
                    let slot = ((offsets[i] + next[i] * skips[i]) % m) as usize;
                    next[i] += 1;
                    if table[slot] == u32::MAX {
                        table[slot] = i as u32;
                        filled += 1;
                        break;
                    }
                }
                if filled == MAGLEV_SIZE {
                    break 'fill;
                }
            }
        }
        Self { table }
    }

    /// The owner of `hash`, then fallbacks (further table slots) when it is unavailable.
    pub fn walk(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let n = self.table.len();
        let start = if n == 0 {
            0
        } else {
            (hash % n as u64) as usize
        };
        (0..n).map(move |i| self.table[(start + i * 7919) % n] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:80")).collect()
    }

    /// Share of keys that change owner when one endpoint is added to `n`;
    /// `owners(ids)` builds a lookup once per endpoint list.
    fn moved<F: Fn(u64) -> usize>(n: usize, owners: impl Fn(&[String]) -> F) -> f64 {
        let before = ids(n);
        let after = ids(n + 1);
        let (old, new) = (owners(&before), owners(&after));
        let keys = 20_000u64;
        let changed = (0..keys)
            .filter(|k| {
                let h = stable_hash(&k.to_be_bytes());
                before[old(h)] != after[new(h)]
            })
            .count();
        changed as f64 / keys as f64
    }

    #[test]
    fn ring_moves_about_one_nth_of_keys_when_a_host_is_added() {
        let share = moved(9, |ids| {
            let ring = Ring::new(ids, &vec![1; ids.len()]);
            move |h| ring.walk(h).next().unwrap()
        });
        // Ideal 1/10; allow the ring's variance.
        assert!((0.05..=0.16).contains(&share), "moved {share}");
    }

    #[test]
    fn maglev_moves_about_one_nth_of_keys_and_balances() {
        let share = moved(9, |ids| {
            let table = Maglev::new(ids, &vec![1; ids.len()]);
            move |h| table.walk(h).next().unwrap()
        });
        assert!((0.08..=0.14).contains(&share), "moved {share}");
        let m = Maglev::new(&ids(3), &[1, 1, 2]);
        let mut counts = [0usize; 3];
        for i in &m.table {
            counts[*i as usize] += 1;
        }
        let heavy = counts[2] as f64 / MAGLEV_SIZE as f64;
        assert!((0.45..=0.55).contains(&heavy), "{counts:?}");
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(stable_hash(b"user-42"), stable_hash(b"user-42"));
        assert_ne!(stable_hash(b"user-42"), stable_hash(b"user-43"));
        // Pinned: changing the function would move every session in a fleet.
        assert_eq!(stable_hash(b""), mix(0xcbf2_9ce4_8422_2325));
    }
}
