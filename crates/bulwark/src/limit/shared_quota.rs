//! Per-minute quotas held in Redis, so that every instance draws on one
//! allowance: three instances sending to a 600 rpm provider send 600, not
//! 1800.
//!
//! One Lua script makes each decision atomically (no read-then-write race
//! between instances) on Redis's own clock (`TIME`), so instances whose
//! clocks disagree still agree on the window. The window is a sliding log
//! like [`super::window::SlidingWindow`]: every grant is remembered until it
//! leaves the minute, in one sorted set per quota owner whose members carry
//! their amounts (`id|input|output`), with running totals beside it. One log
//! serves every window (requests, tokens, input, output), since a grant
//! counts against all of them at the same moment.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::quota::Tokens;
use super::window::Refusal;
use crate::config::RateLimits;
use crate::shared::{NOW_MS, Shared, SharedError};

/// The window every quota counts over.
pub(super) const WINDOW: Duration = Duration::from_secs(60);

/// The script after `NOW_MS` (Redis's clock, in `now`).
const SCRIPT: &str = r"
local log, totals = KEYS[1], KEYS[2]
local window = tonumber(ARGV[1])
local limits = {tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])}
local mode, id, input, output = ARGV[6], ARGV[7], ARGV[8], ARGV[9]

local function parse(member)
  local i, o = string.match(member, '|(%d+)|(%d+)$')
  return tonumber(i) or 0, tonumber(o) or 0
end

-- Totals never go below 0, whatever drift (a lost write, a key evicted
-- alone) put into them. 0 - x, not -x, at the callers: Lua writes minus
-- zero as -0, which HINCRBY refuses.
local function add(field, delta)
  if redis.call('HINCRBY', totals, field, delta) < 0 then
    redis.call('HSET', totals, field, 0)
  end
end

-- Both keys live and die together, so every write renews both.
local function keep()
  redis.call('PEXPIRE', log, window * 2)
  redis.call('PEXPIRE', totals, window * 2)
end

-- Totals without their log count grants nobody can see any more.
if redis.call('EXISTS', log) == 0 then
  redis.call('DEL', totals)
end

local gone = redis.call('ZRANGEBYSCORE', log, '-inf', now - window)
if #gone > 0 then
  local gi, go = 0, 0
  for _, member in ipairs(gone) do
    local i, o = parse(member)
    gi = gi + i
    go = go + o
  end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  if redis.call('EXISTS', log) == 0 then
    redis.call('DEL', totals)
  else
    add('r', 0 - #gone)
    add('i', 0 - gi)
    add('o', 0 - go)
    keep()
  end
end

if mode == 'correct' then
  local estimated = id .. '|' .. ARGV[10] .. '|' .. ARGV[11]
  local at = redis.call('ZSCORE', log, estimated)
  if not at then return {0, 0} end
  redis.call('ZREM', log, estimated)
  redis.call('ZADD', log, at, id .. '|' .. input .. '|' .. output)
  add('i', tonumber(input) - tonumber(ARGV[10]))
  add('o', tonumber(output) - tonumber(ARGV[11]))
  keep()
  return {0, 0}
end

local held = redis.call('HMGET', totals, 'r', 'i', 'o')
local r = math.max(tonumber(held[1]) or 0, 0)
local ti = math.max(tonumber(held[2]) or 0, 0)
local to = math.max(tonumber(held[3]) or 0, 0)
local total = {r, ti + to, ti, to}
local i, o = tonumber(input), tonumber(output)
local want = {1, i + o, i, o}
local needed, short = {}, 0
for k = 1, 4 do
  local limit = limits[k]
  if limit >= 0 then
    if want[k] > limit then return {2, 0} end
    local over = total[k] + want[k] - limit
    if over > 0 then
      needed[k] = over
      short = short + 1
    end
  end
end

if short == 0 then
  redis.call('ZADD', log, now, id .. '|' .. input .. '|' .. output)
  add('r', 1)
  add('i', i)
  add('o', o)
  keep()
  return {0, 0}
end

-- Refused: how long until the oldest grants have freed enough in every
-- window that is short. Read a page at a time, oldest first, and only as
-- far as needed: a saturated log holds a whole minute of grants, and
-- reading it all on every refusal would hold up Redis for everyone.
local PAGE = 128
local wait, freed, from = 0, {0, 0, 0, 0}, 0
while short > 0 do
  local entries = redis.call('ZRANGE', log, from, from + PAGE - 1, 'WITHSCORES')
  if #entries == 0 then break end
  for n = 1, #entries, 2 do
    local gi, go = parse(entries[n])
    local amount = {1, gi + go, gi, go}
    local at = tonumber(entries[n + 1])
    for k = 1, 4 do
      if needed[k] then
        freed[k] = freed[k] + amount[k]
        if freed[k] >= needed[k] then
          wait = math.max(wait, at + window - now)
          needed[k] = nil
          short = short - 1
        end
      end
    end
    if short == 0 then break end
  end
  from = from + PAGE
end
if short > 0 then wait = window end
return {1, math.max(wait, 1)}
";

static QUOTA_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&format!("{NOW_MS}{SCRIPT}")));

/// Tells one grant from every other, across instances.
static GRANTS: AtomicU64 = AtomicU64::new(0);

/// One owner's quotas (a target's or a client key's) in Redis.
#[derive(Debug, Clone)]
pub struct SharedQuotas {
    shared: Shared,
    log: String,
    totals: String,
    /// Requests, tokens, input, output; -1 where unlimited.
    limits: [i64; 4],
    window: Duration,
}

impl SharedQuotas {
    /// `name` is the owner's key name (`quota:target:<label>`); never a
    /// secret, since keys show in Redis's tools. `None` when no limit is set.
    pub fn new(shared: &Shared, name: &str, limits: RateLimits) -> Option<SharedQuotas> {
        let limits = [limits.rpm, limits.tpm, limits.input_tpm, limits.output_tpm];
        if limits.iter().all(Option::is_none) {
            return None;
        }
        // Both keys carry the same hash tag, so a Redis Cluster keeps them on
        // one node and the script may touch both.
        let base = shared.key(name);
        Some(SharedQuotas {
            shared: shared.clone(),
            log: format!("{{{base}}}:log"),
            totals: format!("{{{base}}}:totals"),
            limits: limits.map(|l| l.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))),
            window: WINDOW,
        })
    }

    /// The same quotas over a shorter window, so tests see grants expire.
    #[cfg(test)]
    fn over(mut self, window: Duration) -> SharedQuotas {
        self.window = window;
        self
    }

    /// The instances to divide a quota among while Redis cannot be asked.
    pub fn instances(&self) -> u32 {
        self.shared.instances()
    }

    /// Whether Redis came back from an outage less than `within` ago.
    pub fn rejoined_within(&self, within: Duration) -> bool {
        self.shared.rejoined_within(within)
    }

    /// A name for a new grant, unique among every instance's.
    pub fn grant_id(&self) -> String {
        format!(
            "{}:{}",
            self.shared.instance(),
            GRANTS.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Takes one request and `tokens` from every window if all have room;
    /// otherwise nothing, and the refusal says for how long.
    pub async fn take(
        &self,
        grant: &str,
        tokens: Tokens,
    ) -> Result<Result<(), Refusal>, SharedError> {
        let answer = self.invoke("take", grant, tokens, None).await?;
        Ok(match answer.as_slice() {
            [0, ..] => Ok(()),
            [1, wait, ..] => Err(Refusal::Wait(Duration::from_millis(
                u64::try_from(*wait).unwrap_or(0).max(1),
            ))),
            _ => Err(Refusal::TooLarge),
        })
    }

    /// Replaces grant `grant`'s estimate by the answer's real usage; a grant
    /// already out of the window is left alone.
    pub async fn correct(
        &self,
        grant: &str,
        estimated: Tokens,
        actual: Tokens,
    ) -> Result<(), SharedError> {
        self.invoke("correct", grant, actual, Some(estimated))
            .await
            .map(drop)
    }

    async fn invoke(
        &self,
        mode: &'static str,
        grant: &str,
        tokens: Tokens,
        estimated: Option<Tokens>,
    ) -> Result<Vec<i64>, SharedError> {
        let mut invocation = QUOTA_SCRIPT.prepare_invoke();
        invocation
            .key(&self.log)
            .key(&self.totals)
            .arg(self.window.as_millis() as u64)
            .arg(self.limits[0])
            .arg(self.limits[1])
            .arg(self.limits[2])
            .arg(self.limits[3])
            .arg(mode)
            .arg(grant)
            .arg(tokens.input)
            .arg(tokens.output);
        if let Some(estimated) = estimated {
            invocation.arg(estimated.input).arg(estimated.output);
        }
        self.shared
            .run(|mut connection| async move {
                invocation.invoke_async::<Vec<i64>>(&mut connection).await
            })
            .await
    }
}

#[cfg(test)]
#[path = "shared_quota_tests.rs"]
mod tests;
