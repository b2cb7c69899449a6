//! The health lease: one key in Redis naming the instance that judges
//! health for all. Its holder extends it; anyone takes it when it is free,
//! so a holder that dies or stalls loses it after one ttl and another
//! instance takes over.

use std::time::Duration;

use bulwark::shared::{Shared, SharedError};

/// One call that both extends and takes: a holder whose renewal timed out
/// thinks it lost the lease, and with a separate `SET NX` it could never
/// take back its own still-live key, leaving nobody judging for a ttl.
/// Answers the holder after the call.
const HOLD: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return ARGV[1]
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return holder
";

/// Extends or takes the lease for `ttl`; answers who holds it afterwards.
pub(super) async fn hold(shared: &Shared, ttl: Duration) -> Result<String, SharedError> {
    let key = shared.key("lease:health");
    let me = shared.instance().to_string();
    let ttl_ms = ttl.as_millis().max(1) as u64;
    shared
        .run(|mut c| async move {
            redis::Script::new(HOLD)
                .key(key)
                .arg(me)
                .arg(ttl_ms)
                .invoke_async(&mut c)
                .await
        })
        .await
}

#[cfg(test)]
mod tests {
    use bulwark::config::Secret;
    use bulwark::config::shared::SharedConfig;

    use super::*;

    /// A link to the Redis on 127.0.0.1:6379 under `prefix`, once it is up.
    async fn link(prefix: &str) -> Shared {
        let config = SharedConfig {
            url: Secret::new("redis://127.0.0.1:6379/0"),
            timeout: Duration::from_millis(50),
            key_prefix: prefix.into(),
        };
        let Ok(shared) = Shared::start(config) else {
            panic!("a Redis URL");
        };
        for _ in 0..100 {
            if shared.is_up() {
                return shared;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("Redis on 127.0.0.1:6379 not reached");
    }

    fn holds(answer: Result<String, SharedError>, who: &Shared) -> bool {
        matches!(answer, Ok(holder) if holder == who.instance())
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_a_lapsed_holder_cannot_take_it_back() {
        let prefix = format!("test:lease:{:08x}:", fastrand::u32(..));
        let (a, b) = (link(&prefix).await, link(&prefix).await);
        let ttl = Duration::from_millis(300);
        assert!(holds(hold(&a, ttl).await, &a));
        // `b` is told who holds it.
        assert!(holds(hold(&b, ttl).await, &a));
        // Renewed within the ttl, it outlives it.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(120)).await;
            assert!(holds(hold(&a, ttl).await, &a));
            assert!(holds(hold(&b, ttl).await, &a));
        }
        // `a` stalls past the ttl: `b` takes over, and `a` cannot renew.
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        assert!(holds(hold(&b, ttl).await, &b));
        assert!(holds(hold(&a, ttl).await, &b));
        assert!(holds(hold(&b, ttl).await, &b));
    }

    #[tokio::test]
    async fn a_holder_that_missed_an_answer_keeps_its_live_lease() {
        let prefix = format!("test:lease:{:08x}:", fastrand::u32(..));
        let (a, b) = (link(&prefix).await, link(&prefix).await);
        let ttl = Duration::from_millis(500);
        assert!(holds(hold(&a, ttl).await, &a));
        // Whatever `a` believes after a lost answer, asking again while its
        // key lives gives it back rather than leaving the lease idle.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(holds(hold(&a, ttl).await, &a));
        tokio::time::sleep(Duration::from_millis(400)).await;
        // Extended, not left to lapse at the first ttl.
        assert!(holds(hold(&b, ttl).await, &a));
    }
}
