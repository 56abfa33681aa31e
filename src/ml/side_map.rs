//! Which side of the split each drawing is on, one bit a drawing (1.2 MB at 10M drawings),
//! with a small directory of counts that finds the `k`-th drawing of either side in a few
//! steps: how training walks its side in a shuffled order and validation walks its side in
//! order without a list of indices (8 bytes a drawing).

/// Words of 64 bits between two entries of the count directory: 512 drawings, so the
/// directory costs an eighth of a bit a drawing and a lookup scans at most 8 words.
const BLOCK_WORDS: usize = 8;
/// Drawings per block.
const BLOCK_BITS: usize = BLOCK_WORDS * 64;

/// One bit per drawing, set on the validation side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideMap {
    /// The bits, drawing `i` at bit `i % 64` of word `i / 64`.
    words: Vec<u64>,
    /// Set bits before each block, filled by [`SideMap::finish`].
    ones_before: Vec<u64>,
    /// Drawings.
    len: usize,
    /// Set bits in all.
    ones: usize,
}

impl SideMap {
    /// `len` drawings, all on the training side.
    pub fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            ones_before: Vec::new(),
            len,
            ones: 0,
        }
    }

    /// Puts drawing `index` on the validation side; call [`SideMap::finish`] after the last.
    pub fn set(&mut self, index: usize) {
        assert!(index < self.len, "drawing {index} of {}", self.len);
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        if self.words[word] & bit == 0 {
            self.words[word] |= bit;
            self.ones += 1;
        }
    }

    /// Builds the count directory once every bit is set.
    pub fn finish(&mut self) {
        let mut ones = 0u64;
        self.ones_before = self
            .words
            .chunks(BLOCK_WORDS)
            .map(|block| {
                let before = ones;
                ones += block.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
                before
            })
            .collect();
    }

    /// Drawings in all.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no drawings.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drawings on the validation side.
    pub fn ones(&self) -> usize {
        self.ones
    }

    /// Drawings on the training side.
    pub fn zeros(&self) -> usize {
        self.len - self.ones
    }

    /// Whether drawing `index` is on the validation side.
    pub fn get(&self, index: usize) -> bool {
        self.words[index / 64] >> (index % 64) & 1 == 1
    }

    /// The index of the `k`-th (0-based) drawing whose bit is `bit`, in index order.
    pub fn select(&self, k: usize, bit: bool) -> usize {
        let total = if bit { self.ones } else { self.zeros() };
        assert!(k < total, "position {k} of {total} on side {bit}");
        assert_eq!(
            self.ones_before.len(),
            self.words.len().div_ceil(BLOCK_WORDS),
            "finish() was called"
        );
        let before = |block: usize| -> usize {
            let ones = self.ones_before[block] as usize;
            if bit {
                ones
            } else {
                block * BLOCK_BITS - ones
            }
        };
        // The last block with at most k such bits before it.
        let (mut low, mut high) = (0, self.ones_before.len());
        while high - low > 1 {
            let middle = (low + high) / 2;
            if before(middle) <= k {
                low = middle;
            } else {
                high = middle;
            }
        }
        let mut remaining = k - before(low);
        for (offset, &word) in self.words[low * BLOCK_WORDS..].iter().enumerate() {
            let mut word = if bit { word } else { !word };
            let count = word.count_ones() as usize;
            if remaining < count {
                for _ in 0..remaining {
                    word &= word - 1; // clears the lowest set bit
                }
                return (low * BLOCK_WORDS + offset) * 64 + word.trailing_zeros() as usize;
            }
            remaining -= count;
        }
        unreachable!("the directory counts {total} bits on side {bit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_finds_every_drawing_of_either_side_in_order() {
        for len in [1, 63, 64, 65, 511, 512, 513, 3000] {
            let mut map = SideMap::new(len);
            let chosen: Vec<bool> = (0..len).map(|i| (i * 7919) % 5 < 2).collect();
            for (i, &c) in chosen.iter().enumerate() {
                if c {
                    map.set(i);
                }
            }
            map.finish();
            let ones: Vec<usize> = (0..len).filter(|&i| chosen[i]).collect();
            let zeros: Vec<usize> = (0..len).filter(|&i| !chosen[i]).collect();
            assert_eq!(map.ones(), ones.len());
            assert_eq!(map.zeros(), zeros.len());
            let got_ones: Vec<usize> = (0..map.ones()).map(|k| map.select(k, true)).collect();
            let got_zeros: Vec<usize> = (0..map.zeros()).map(|k| map.select(k, false)).collect();
            assert_eq!(got_ones, ones, "len {len}");
            assert_eq!(got_zeros, zeros, "len {len}");
            assert!((0..len).all(|i| map.get(i) == chosen[i]));
        }
    }

    #[test]
    fn a_map_with_every_drawing_on_one_side_selects_them_all() {
        let mut map = SideMap::new(1000);
        map.finish();
        assert_eq!(map.select(999, false), 999);
        for i in 0..1000 {
            map.set(i);
        }
        map.finish();
        assert_eq!(map.zeros(), 0);
        assert_eq!(map.select(0, true), 0);
        assert_eq!(map.select(999, true), 999);
    }
}
