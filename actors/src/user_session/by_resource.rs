//! `ByResource`: what a user session keeps per station, by resource name. A user has one
//! to a few stations, so a vector searched in order beats a hash map, which allocates room
//! for several entries as soon as it holds one; this matters once per online user.

/// Values by resource name, in insertion order.
#[derive(Debug)]
pub struct ByResource<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for ByResource<V> {
    fn default() -> Self {
        ByResource { entries: Vec::new() }
    }
}

impl<V> ByResource<V> {
    pub fn get(&self, resource: &str) -> Option<&V> {
        self.entries.iter().find(|(name, _)| name == resource).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, resource: &str) -> Option<&mut V> {
        self.entries.iter_mut().find(|(name, _)| name == resource).map(|(_, v)| v)
    }

    /// Sets the value for `resource`, returning the one it replaced.
    pub fn insert(&mut self, resource: String, value: V) -> Option<V> {
        if let Some(slot) = self.get_mut(&resource) {
            return Some(std::mem::replace(slot, value));
        }
        if self.entries.len() == self.entries.capacity() {
            // Grow by a quarter: exact for the usual one or two stations.
            self.entries.reserve_exact((self.entries.len() / 4).max(1));
        }
        self.entries.push((resource, value));
        None
    }

    pub fn remove(&mut self, resource: &str) -> Option<V> {
        let at = self.entries.iter().position(|(name, _)| name == resource)?;
        let (_, value) = self.entries.swap_remove(at);
        if self.entries.is_empty() {
            self.entries = Vec::new();
        }
        Some(value)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.entries.iter().map(|(name, v)| (name, v))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_behaves_as_a_map_and_holds_only_what_it_needs() {
        let mut map = ByResource::default();
        assert_eq!(map.insert("phone".to_owned(), 1), None);
        assert_eq!(map.entries.capacity(), 1, "one station, one slot");
        assert_eq!(map.insert("laptop".to_owned(), 2), None);
        assert_eq!(map.insert("phone".to_owned(), 3), Some(1));
        assert_eq!((map.get("phone"), map.get("laptop"), map.get("tablet")), (Some(&3), Some(&2), None));
        *map.get_mut("laptop").unwrap() += 10;
        assert_eq!(map.values().copied().collect::<Vec<_>>(), [3, 12]);
        assert_eq!(map.remove("phone"), Some(3));
        assert_eq!(map.remove("phone"), None);
        assert_eq!(map.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>(), [("laptop", 12)]);
        map.remove("laptop");
        assert_eq!(map.entries.capacity(), 0, "an empty map gives its memory back");
    }
}
