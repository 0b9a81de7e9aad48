//! The model's prefix cache, as vLLM's automatic prefix caching keeps
//! one: a prompt's tokens in blocks of [`BLOCK_TOKENS`], each block known
//! by a hash of itself and every block before it; a prompt whose leading
//! blocks were seen skips their prefill. Bounded to a number of blocks,
//! the least recently used leaving first.

use std::collections::{BTreeMap, HashMap};

/// Tokens of a block (vLLM's default block size).
pub const BLOCK_TOKENS: usize = 16;

#[derive(Debug)]
pub struct PrefixCache {
    capacity: usize,
    /// Block hash -> when it was last used; and the reverse, oldest first.
    used: HashMap<u64, u64>,
    by_age: BTreeMap<u64, u64>,
    tick: u64,
}

impl PrefixCache {
    /// `capacity` blocks (at least 1).
    pub fn new(capacity: usize) -> Self {
        PrefixCache {
            capacity: capacity.max(1),
            used: HashMap::new(),
            by_age: BTreeMap::new(),
            tick: 0,
        }
    }

    /// The prompt's tokens found cached (its leading whole blocks that
    /// were seen, in order); every whole block is then cached.
    pub fn lookup(&mut self, ids: &[u32]) -> usize {
        let mut chain = 0xcbf2_9ce4_8422_2325u64;
        let mut hit = 0;
        let mut matching = true;
        for block in ids.chunks_exact(BLOCK_TOKENS) {
            for id in block {
                chain = (chain ^ u64::from(*id)).wrapping_mul(0x0000_0100_0000_01b3);
            }
            matching &= self.used.contains_key(&chain);
            if matching {
                hit += BLOCK_TOKENS;
            }
            self.touch(chain);
        }
        hit
    }

    fn touch(&mut self, block: u64) {
        self.tick += 1;
        if let Some(old) = self.used.insert(block, self.tick) {
            self.by_age.remove(&old);
        }
        self.by_age.insert(self.tick, block);
        while self.used.len() > self.capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.used.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_beginning_hits_in_whole_blocks() {
        let mut c = PrefixCache::new(1000);
        let a: Vec<u32> = (0..100).collect();
        assert_eq!(c.lookup(&a), 0, "nothing seen yet");
        assert_eq!(c.lookup(&a), 96, "six whole blocks of 16");
        // The same first 40 tokens, then others: two whole blocks shared.
        let b: Vec<u32> = (0..40).chain(500..560).collect();
        assert_eq!(c.lookup(&b), 32);
        // The same block later in a prompt is not a prefix.
        let d: Vec<u32> = (900..916).chain(0..16).collect();
        assert_eq!(c.lookup(&d), 0);
    }

    #[test]
    fn the_least_recently_used_block_leaves_first() {
        let mut c = PrefixCache::new(2);
        let a: Vec<u32> = (0..32).collect();
        let b: Vec<u32> = (100..132).collect();
        c.lookup(&a);
        assert_eq!(c.lookup(&a), 32);
        c.lookup(&b);
        assert_eq!(c.lookup(&a), 0, "b's two blocks pushed a's out");
    }
}
