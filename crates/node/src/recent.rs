//! A bounded map that forgets its oldest entries, for what a node remembers about recent
//! readings and transactions (verified signatures, refusals, receipts still owed).
//!
//! It keeps two generations of at most `max / 2` entries each: new entries go into the
//! current generation; when that is full it becomes the previous one and the previous one is
//! dropped whole. So an entry is kept for at least `max / 2` newer insertions and at most `max`
//! entries are held, with no per-entry bookkeeping of insertion order: a queue of keys beside
//! the map would cost as much memory again as the keys themselves.

use std::{collections::HashMap, hash::Hash};

/// A map of at most `max` entries that forgets the oldest generation first.
pub struct Recent<K, V> {
    half: usize,
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
}

impl<K: Eq + Hash, V> Recent<K, V> {
    /// An empty map that holds at most `max` entries (at least 2) and keeps each for at least
    /// `max / 2` newer insertions.
    pub fn new(max: usize) -> Self {
        Self {
            half: (max / 2).max(1),
            current: HashMap::new(),
            previous: HashMap::new(),
        }
    }

    /// Inserts or replaces `key`'s value; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(old) = self.current.get_mut(&key) {
            return Some(std::mem::replace(old, value));
        }
        let old = self.previous.remove(&key);
        if self.current.len() >= self.half {
            // The previous generation's table is reused (cleared, capacity kept).
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
        }
        self.current.insert(key, value);
        old
    }

    /// The value of `key`, if it is remembered.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.current.get(key).or_else(|| self.previous.get(key))
    }

    /// Removes `key`; returns its value if it was remembered.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.current
            .remove(key)
            .or_else(|| self.previous.remove(key))
    }

    /// Entries remembered.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_entry_for_half_the_bound_and_never_more_than_the_bound() {
        let max = 10;
        let mut r = Recent::new(max);
        for i in 0..1000u32 {
            r.insert(i, i * 2);
            assert!(r.len() <= max, "{} entries after inserting {i}", r.len());
            // Every one of the last max / 2 insertions is still there, with its value.
            for j in i.saturating_sub(max as u32 / 2 - 1)..=i {
                assert_eq!(r.get(&j), Some(&(j * 2)), "entry {j} forgotten at {i}");
            }
        }
        // The oldest are gone.
        assert_eq!(r.get(&0), None);
        assert_eq!(r.get(&900), None);
    }

    #[test]
    fn replacing_and_removing_find_both_generations() {
        let mut r = Recent::new(4);
        r.insert("a", 1);
        r.insert("b", 2);
        r.insert("c", 3); // "a" and "b" are now the previous generation
        assert_eq!(r.insert("a", 10), Some(1));
        assert_eq!(r.get(&"a"), Some(&10));
        assert_eq!(r.len(), 3, "a replaced value is not held twice");
        assert_eq!(r.remove(&"b"), Some(2));
        assert_eq!(r.remove(&"b"), None);
        assert_eq!(r.remove(&"c"), Some(3));
        assert_eq!(r.get(&"c"), None);
        assert_eq!(r.len(), 1);
        assert!(!r.is_empty());
        r.remove(&"a");
        assert!(r.is_empty());
    }
}
