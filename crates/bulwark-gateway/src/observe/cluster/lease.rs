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
