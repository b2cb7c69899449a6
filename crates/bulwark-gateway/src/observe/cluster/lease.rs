//! The health lease: one key in Redis naming the instance that judges
//! health for all. Taken with `SET NX PX` when free, extended by its holder
//! only while it still holds it, so a holder that dies or stalls loses it
//! after one ttl and another instance takes over.

use std::time::Duration;

use bulwark::shared::{Shared, SharedError};

/// Extends the lease only if `ARGV[1]` still holds it: a holder that
/// stalled past the ttl must not take back a lease someone else took.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Whether this instance holds the lease after this call. `held` is
/// whether it held it before.
pub(super) async fn hold(shared: &Shared, held: bool, ttl: Duration) -> Result<bool, SharedError> {
    let key = shared.key("lease:health");
    let me = shared.instance().to_string();
    let ttl_ms = ttl.as_millis().max(1) as u64;
    if held {
        let renewed: i64 = shared
            .run(|mut c| async move {
                redis::Script::new(RENEW)
                    .key(key)
                    .arg(me)
                    .arg(ttl_ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        return Ok(renewed == 1);
    }
    let taken: Option<String> = shared
        .run(|mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(me)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(taken.is_some())
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

    #[tokio::test]
    async fn one_holder_at_a_time_and_a_lapsed_holder_cannot_take_it_back() {
        let prefix = format!("test:lease:{:08x}:", fastrand::u32(..));
        let (a, b) = (link(&prefix).await, link(&prefix).await);
        let ttl = Duration::from_millis(300);
        assert!(matches!(hold(&a, false, ttl).await, Ok(true)));
        assert!(matches!(hold(&b, false, ttl).await, Ok(false)));
        // Renewed within the ttl, it outlives it.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(120)).await;
            assert!(matches!(hold(&a, true, ttl).await, Ok(true)));
            assert!(matches!(hold(&b, false, ttl).await, Ok(false)));
        }
        // `b` never held it: its renewal does not take it.
        assert!(matches!(hold(&b, true, ttl).await, Ok(false)));
        // `a` stalls past the ttl: `b` takes over, and `a` cannot renew.
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        assert!(matches!(hold(&b, false, ttl).await, Ok(true)));
        assert!(matches!(hold(&a, true, ttl).await, Ok(false)));
        assert!(matches!(hold(&b, true, ttl).await, Ok(true)));
    }
}
