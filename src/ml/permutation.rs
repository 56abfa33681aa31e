//! A keyed pseudo-random permutation of `0..n`, computed one position at a time: how an
//! epoch visits the training set in a shuffled order without holding that order (a
//! shuffled list of indices costs 8 bytes per drawing, 60 MB at 10M drawings; this costs
//! nothing per drawing).
//!
//! A balanced Feistel network over the smallest even number of bits that covers `n` is a
//! bijection of `0..2^bits` whatever its round function; cycle-walking (applying it again
//! while the result is `n` or more) turns it into a bijection of `0..n`. The domain is less
//! than `4n`, so a position takes fewer than four walks on average. Its order is well mixed
//! for shuffling training data, not meant for cryptography.

/// Feistel rounds: four make a pseudo-random permutation (Luby-Rackoff); two more cost
/// little and mix small domains better.
const ROUNDS: usize = 6;

/// A permutation of `0..n` chosen by a seed.
#[derive(Debug, Clone)]
pub struct Permutation {
    /// The size of the permuted range.
    n: u64,
    /// Bits of each half of the Feistel block.
    half_bits: u32,
    /// One key per round, derived from the seed.
    keys: [u64; ROUNDS],
}

impl Permutation {
    /// The permutation of `0..n` for `seed`: the same seed gives the same order.
    pub fn new(n: usize, seed: u64) -> Self {
        let n = n as u64;
        let bits = (64 - n.saturating_sub(1).leading_zeros()).max(2);
        let mut keys = [0u64; ROUNDS];
        for (round, key) in keys.iter_mut().enumerate() {
            *key = mix(seed ^ (round as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        }
        Self {
            n,
            half_bits: bits.div_ceil(2),
            keys,
        }
    }

    /// How many positions.
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The value at position `i` (below [`Permutation::len`]).
    pub fn at(&self, i: usize) -> usize {
        assert!((i as u64) < self.n, "position {i} is outside 0..{}", self.n);
        let mut x = i as u64;
        loop {
            x = self.feistel(x);
            if x < self.n {
                return x as usize;
            }
        }
    }

    /// One pass of the Feistel network over `0..2^(2 * half_bits)`.
    fn feistel(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for key in self.keys {
            let next = left ^ (mix(right ^ key) & mask);
            left = right;
            right = next;
        }
        (left << self.half_bits) | right
    }
}

/// The SplitMix64 finalizer: a well-spread 64-bit hash of `z`.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &Permutation) -> Vec<usize> {
        (0..p.len()).map(|i| p.at(i)).collect()
    }

    #[test]
    fn every_size_is_permuted_one_to_one() {
        for n in (0..70).chain([255, 256, 257, 1000, 4097]) {
            let p = Permutation::new(n, 7);
            let mut seen = all(&p);
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_order_and_another_seed_another() {
        let a = all(&Permutation::new(1000, 1));
        assert_eq!(a, all(&Permutation::new(1000, 1)));
        let b = all(&Permutation::new(1000, 2));
        assert_ne!(a, b);
        // Shuffled, not nearly the identity: few values stay in place.
        let fixed = a.iter().enumerate().filter(|(i, &v)| *i == v).count();
        assert!(fixed < 20, "{fixed} fixed points of 1000");
    }

    #[test]
    fn the_first_positions_spread_over_the_whole_range() {
        // An epoch capped at a few steps still sees drawings from everywhere.
        let p = Permutation::new(100_000, 3);
        let first: Vec<usize> = (0..100).map(|i| p.at(i)).collect();
        let high = first.iter().filter(|&&v| v >= 50_000).count();
        assert!((30..=70).contains(&high), "{high} of 100 in the upper half");
    }
}
