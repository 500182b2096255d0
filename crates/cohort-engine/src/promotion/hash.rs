//! A small, fast, deterministic hasher for the catalog's own maps (skus, categories,
//! customers, segments): a calculation looks up every basket line's names, so hashing
//! short strings must be cheap. Keys are names the catalog chose to intern, not
//! attacker-chosen table sizes, and lookups of unknown names only miss.
//!
//! The multiply-rotate scheme of rustc's `FxHasher`, eight bytes at a time, the length
//! first (so zero padding cannot collide).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.add(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("chunks of eight")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map hashed with `FastHasher`.
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_alike_and_lengths_matter() {
        let hash = |s: &str| {
            let mut h = FastHasher::default();
            std::hash::Hash::hash(s, &mut h);
            h.finish()
        };
        assert_eq!(hash("SKI-1"), hash("SKI-1"));
        assert_ne!(hash("SKI-1"), hash("SKI-2"));
        assert_ne!(hash("ab"), hash("ab\0"));
        let mut map: FastMap<String, u32> = FastMap::default();
        map.insert("ski".into(), 1);
        assert_eq!(map.get("ski"), Some(&1));
    }
}
