//! Splitting a catalog between workers: each takes the repositories whose stable
//! hash falls in its shard, so workers agree without talking to each other.

use std::fmt;
use std::str::FromStr;

use ocisync_oci::RepoName;

/// Shard `index` of `count` (0-based): `--shard 2/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Why a shard could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not written `INDEX/COUNT`; the text as given.
    #[error("shard \"{0}\" is not INDEX/COUNT, e.g. 0/4")]
    Syntax(String),
    /// A count of 0.
    #[error("shard count must be at least 1")]
    ZeroCount,
    /// An index not below the count.
    #[error("shard index {index} is not below the count {count} (indexes start at 0)")]
    IndexTooLarge {
        /// The index given.
        index: u32,
        /// The count given.
        count: u32,
    },
}

impl Shard {
    /// Shard `index` of `count` (from 0).
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 {
            return Err(ShardError::ZeroCount);
        }
        if index >= count {
            return Err(ShardError::IndexTooLarge { index, count });
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard takes the repository. The hash is FNV-1a of the name's
    /// bytes: fixed across processes, platforms and releases, unlike std's hasher.
    pub fn takes(&self, repo: &RepoName) -> bool {
        fnv1a(repo.as_str().as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(text.to_owned());
        let (index, count) = text.split_once('/').ok_or_else(syntax)?;
        let index = index.trim().parse().map_err(|_| syntax())?;
        let count = count.trim().parse().map_err(|_| syntax())?;
        Shard::new(index, count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// 64-bit FNV-1a (http://www.isthe.com/chongo/tech/comp/fnv/).
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET_BASIS, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(size: usize) -> Vec<RepoName> {
        (0..size)
            .map(|n| format!("team-{}/image-{n}", n % 7).parse().unwrap())
            .collect()
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_catalog() {
        let repos = catalog(500);
        for count in [1, 2, 3, 8] {
            let shards: Vec<Shard> = (0..count).map(|index| Shard::new(index, count).unwrap()).collect();
            for repo in &repos {
                let takers = shards.iter().filter(|shard| shard.takes(repo)).count();
                assert_eq!(takers, 1, "{repo} taken by {takers} of {count} shards");
            }
            // Every shard gets a fair part, not everything or nothing.
            for shard in &shards {
                let taken = repos.iter().filter(|repo| shard.takes(repo)).count();
                let fair = repos.len() / count as usize;
                assert!(
                    taken > fair / 2 && taken < fair * 2,
                    "{shard} took {taken} of {}",
                    repos.len()
                );
            }
        }
    }

    #[test]
    fn the_hash_is_fnv1a_so_other_tools_can_compute_it() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/8".parse::<Shard>(), Shard::new(2, 8));
        assert_eq!(
            "8/8".parse::<Shard>(),
            Err(ShardError::IndexTooLarge { index: 8, count: 8 })
        );
        assert_eq!("0/0".parse::<Shard>(), Err(ShardError::ZeroCount));
        assert_eq!("2".parse::<Shard>(), Err(ShardError::Syntax("2".into())));
        assert_eq!("a/b".parse::<Shard>(), Err(ShardError::Syntax("a/b".into())));
    }
}
