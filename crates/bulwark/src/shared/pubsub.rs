//! One channel's messages from Redis, re-subscribed whenever the
//! connection comes back.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

/// Messages waiting for a slow listener; beyond this they are dropped,
/// since every use of a channel tolerates a lost message.
const BACKLOG: usize = 1024;

/// A message larger than this is not ours: dropped (redis-rs has read it
/// whole by then; what this spares is the copy and the listener's work).
const MAX_MESSAGE: usize = 64 * 1024;

const RETRY: Duration = Duration::from_millis(500);

const PING_EVERY: Duration = Duration::from_secs(2);

pub(super) fn spawn(client: redis::Client, channel: String) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel(BACKLOG);
    tokio::spawn(async move {
        loop {
            if sender.is_closed() {
                return;
            }
            if let Err(error) = listen(&client, &channel, &sender).await {
                tracing::debug!(%channel, "subscription lost: {error}");
            }
            tokio::time::sleep(RETRY).await;
        }
    });
    receiver
}

async fn listen(
    client: &redis::Client,
    channel: &str,
    sender: &mpsc::Sender<Vec<u8>>,
) -> redis::RedisResult<()> {
    let mut pubsub = match tokio::time::timeout(RETRY * 4, client.get_async_pubsub()).await {
        Ok(pubsub) => pubsub?,
        Err(_) => return Ok(()),
    };
    // A frozen Redis accepts the connection and then never answers: an
    // unbounded wait here would leave the channel dead until it thawed.
    match tokio::time::timeout(RETRY * 4, pubsub.subscribe(channel)).await {
        Ok(subscribed) => subscribed?,
        Err(_) => return Ok(()),
    }
    let (mut sink, mut messages) = pubsub.split();
    // A cut network leaves a silent connection that never ends: a ping
    // that goes unanswered is how it is noticed.
    let mut pings = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else { return Ok(()) };
                let payload = message.get_payload_bytes();
                if payload.len() <= MAX_MESSAGE {
                    let _ = sender.try_send(payload.to_vec());
                }
            }
            _ = pings.tick() => {
                match tokio::time::timeout(PING_EVERY, sink.ping::<()>()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Err(error),
                    Err(_) => return Ok(()),
                }
            }
            () = sender.closed() => return Ok(()),
        }
    }
}
