//! The generator's randomness: splitmix64, seeded from (seed, index), so that task
//! `index` needs none of the tasks before it.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
/// Seeds the stream of image edge cases (boxes past an edge, turned, outside).
pub(crate) const EDGE_SEED: u64 = 0xED6E_5EED_0000_0001;

/// The splitmix64 output function: a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64, seeded from (seed, index).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64, index: u64) -> Rng {
        Rng(mix64(seed ^ mix64(index.wrapping_add(GOLDEN))))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix64(self.0)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille / 1000`.
    pub(crate) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub(crate) fn pick<'s, T>(&mut self, items: &'s [T]) -> &'s T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub(crate) fn word(&mut self, words: &[&'static str]) -> &'static str {
        words[self.below(words.len() as u64) as usize]
    }

    /// A confidence in 0.5..1, in thousandths.
    pub(crate) fn confidence(&mut self) -> f64 {
        self.range(500, 999) as f64 / 1000.0
    }
}
