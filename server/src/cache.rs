//! The knowledge-base and text-to-speech caches: in memory (bounded by
//! entry count, oldest entry evicted first; the embedded default), or in
//! a real Redis (`--cache redis://HOST:PORT[/DB]`), as the production
//! backend keeps them. A Redis that does not answer is never an error to
//! the user: the lookup is a miss, counted as `unavailable`.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// What a lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Miss,
    /// The cache did not answer (Redis down): served as a miss.
    Unavailable(String),
}

impl Lookup {
    pub fn is_hit(&self) -> bool {
        *self == Lookup::Hit
    }
}

/// One cache (KB or TTS).
#[derive(Debug)]
pub enum Cache {
    Memory(Memory),
    Redis(Redis),
}

impl Cache {
    /// Whether `key` was there; it is there afterwards.
    pub async fn lookup(&self, key: &str) -> Lookup {
        match self {
            Cache::Memory(m) => {
                if m.lookup(key) {
                    Lookup::Hit
                } else {
                    Lookup::Miss
                }
            }
            Cache::Redis(r) => r.lookup(key).await,
        }
    }
}

/// A bounded set of keys in this process.
#[derive(Debug)]
pub struct Memory {
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    keys: HashSet<String>,
    order: VecDeque<String>,
}

impl Memory {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    /// True on a hit. A miss inserts the key, evicting the oldest when full.
    pub fn lookup(&self, key: &str) -> bool {
        let mut e = self.inner.lock().expect("cache lock");
        if e.keys.contains(key) {
            return true;
        }
        if self.capacity == 0 {
            return false;
        }
        if e.order.len() >= self.capacity
            && let Some(old) = e.order.pop_front()
        {
            e.keys.remove(&old);
        }
        e.keys.insert(key.to_owned());
        e.order.push_back(key.to_owned());
        false
    }

    pub fn len(&self) -> usize {
        self.inner.lock().expect("cache lock").order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How long one Redis command may take before the lookup is served as a
/// miss (and counted unavailable).
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// Keys in a Redis, `PREFIX:NAME:KEY`, each with a TTL. One connection
/// (multiplexed, shared by every request), made on first use and
/// reconnected by itself after an outage.
#[derive(Debug)]
pub struct Redis {
    link: std::sync::Arc<RedisLink>,
    namespace: String,
    ttl_s: u64,
}

/// The connection to one Redis, shared by both caches and the health
/// check.
pub struct RedisLink {
    client: redis::Client,
    url: String,
    conn: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink").field("url", &self.url).finish()
    }
}

impl RedisLink {
    /// A link to `url` (`redis://HOST:PORT[/DB]`); nothing is connected
    /// yet. An URL that is not one is an error naming it.
    pub fn new(url: &str) -> Result<RedisLink, String> {
        let client = redis::Client::open(url).map_err(|e| {
            format!("--cache {url}: not a Redis URL like redis://127.0.0.1:6379/0 ({e})")
        })?;
        Ok(RedisLink {
            client,
            url: url.to_owned(),
            conn: tokio::sync::OnceCell::new(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The connection, made on first use (a Redis down at start-up is an
    /// outage like any other, not a refusal to start).
    async fn conn(&self) -> Result<redis::aio::ConnectionManager, String> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        self.conn
            .get_or_try_init(|| {
                redis::aio::ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await
            .cloned()
            .map_err(|e| format!("redis {}: {e}", self.url))
    }

    /// Runs one command with [`REDIS_TIMEOUT`]; the error says why.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut conn = tokio::time::timeout(REDIS_TIMEOUT, self.conn())
            .await
            .map_err(|_| format!("redis {}: no connection within {REDIS_TIMEOUT:?}", self.url))??;
        match tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("redis {}: {e}", self.url)),
            Err(_) => Err(format!(
                "redis {}: no answer within {REDIS_TIMEOUT:?}",
                self.url
            )),
        }
    }

    /// `PING`: its round trip, or why it failed.
    pub async fn ping(&self) -> Result<Duration, String> {
        let start = tokio::time::Instant::now();
        let pong: String = self.run(&redis::cmd("PING")).await?;
        if pong != "PONG" {
            return Err(format!("redis {}: PING answered {pong:?}", self.url));
        }
        Ok(start.elapsed())
    }
}

impl Redis {
    /// The cache `name` (kb, tts) under `prefix` in the linked Redis.
    pub fn new(link: std::sync::Arc<RedisLink>, prefix: &str, name: &str, ttl: Duration) -> Redis {
        Redis {
            link,
            namespace: format!("{prefix}:{name}:"),
            ttl_s: ttl.as_secs().max(1),
        }
    }

    /// One round trip: `SET key 1 NX EX ttl` sets the key when it was not
    /// there (a miss) and answers nil when it was (a hit).
    async fn lookup(&self, key: &str) -> Lookup {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}{key}", self.namespace))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(self.ttl_s);
        match self.link.run::<Option<String>>(&cmd).await {
            Ok(Some(_)) => Lookup::Miss,
            Ok(None) => Lookup::Hit,
            Err(why) => Lookup::Unavailable(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_after_miss_and_oldest_evicted() {
        let c = Memory::new(2);
        assert!(!c.lookup("a"));
        assert!(c.lookup("a"));
        assert!(!c.lookup("b"));
        assert!(!c.lookup("c")); // evicts a
        assert!(!c.lookup("a"));
        assert_eq!(c.len(), 2);
        let off = Memory::new(0);
        assert!(!off.lookup("a") && !off.lookup("a"));
    }

    #[tokio::test]
    async fn a_redis_that_is_not_there_is_a_miss_that_says_why() {
        // A port nothing listens on: every lookup is served, as a miss.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let link =
            std::sync::Arc::new(RedisLink::new(&format!("redis://127.0.0.1:{port}")).unwrap());
        let c = Cache::Redis(Redis::new(
            std::sync::Arc::clone(&link),
            "t",
            "kb",
            Duration::from_secs(60),
        ));
        match c.lookup("a").await {
            Lookup::Unavailable(why) => assert!(why.contains(&port.to_string()), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(link.ping().await.is_err());
        assert!(RedisLink::new("http://x").is_err());
    }
}
