//! Observations cut into messages the subscribers take: each one stays
//! under the subscriber's 64 KiB cap (larger ones are dropped unread), so
//! they are measured as serialized, not counted. Breaker flips and admin
//! words go in messages of their own, so a large batch of records can
//! never carry them away.

use serde::Serialize;

use super::observed::{AdminWord, Batch, Flip};
use bulwark::observe::record::RequestRecord;

/// Bytes per message at most, well under the 64 KiB cap for the envelope.
pub(super) const MESSAGE_LIMIT: usize = 48 * 1024;

/// The messages to publish, and how many observations were too large to
/// send at all.
pub(super) fn messages(
    from: &str,
    records: Vec<RequestRecord>,
    breakers: Vec<Flip>,
    admin: Vec<AdminWord>,
) -> (Vec<Vec<u8>>, u64) {
    let mut out = Vec::new();
    let mut dropped = 0;
    for records in groups(records, &mut dropped) {
        push(
            &mut out,
            &mut dropped,
            Batch {
                from: from.to_string(),
                records,
                ..Batch::default()
            },
        );
    }
    for breakers in groups(breakers, &mut dropped) {
        push(
            &mut out,
            &mut dropped,
            Batch {
                from: from.to_string(),
                breakers,
                ..Batch::default()
            },
        );
    }
    for word in admin {
        push(
            &mut out,
            &mut dropped,
            Batch {
                from: from.to_string(),
                admin: vec![word],
                ..Batch::default()
            },
        );
    }
    (out, dropped)
}

fn push(out: &mut Vec<Vec<u8>>, dropped: &mut u64, batch: Batch) {
    match serde_json::to_vec(&batch) {
        Ok(payload) if payload.len() <= MESSAGE_LIMIT => out.push(payload),
        _ => *dropped += 1,
    }
}

/// `items` in groups whose JSON, with the envelope, fits one message; an
/// item too large alone is dropped and counted.
fn groups<T: Serialize>(items: Vec<T>, dropped: &mut u64) -> Vec<Vec<T>> {
    // The envelope: `from` (an instance id) and the field names.
    const ENVELOPE: usize = 512;
    let mut groups = Vec::new();
    let mut group = Vec::new();
    let mut size = ENVELOPE;
    for item in items {
        let Ok(len) = serde_json::to_vec(&item).map(|v| v.len() + 1) else {
            *dropped += 1;
            continue;
        };
        if ENVELOPE + len > MESSAGE_LIMIT {
            *dropped += 1;
            continue;
        }
        if size + len > MESSAGE_LIMIT {
            groups.push(std::mem::take(&mut group));
            size = ENVELOPE;
        }
        size += len;
        group.push(item);
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

#[cfg(test)]
mod tests {
    use bulwark::observe::record::AttemptRecord;

    use super::*;

    fn record(attempts: usize) -> RequestRecord {
        RequestRecord {
            route: "chat".into(),
            attempts: (0..attempts)
                .map(|_| AttemptRecord {
                    target: "provider-with-a-long-name/model-with-a-long-name".into(),
                    error_class: Some("server".into()),
                    ..AttemptRecord::default()
                })
                .collect(),
            ..RequestRecord::default()
        }
    }

    #[test]
    fn every_message_fits_and_flips_and_words_travel_apart() {
        // Records with many attempts: fifty of them overflowed one message.
        let records: Vec<_> = (0..400).map(|_| record(8)).collect();
        let flips = vec![Flip {
            at: 1,
            target: "p/m".into(),
            from: "closed".into(),
            to: "open".into(),
        }];
        let words = vec![AdminWord::Maintenance {
            at: 1,
            component: "p/m".into(),
            on: true,
        }];
        let (messages, dropped) = messages("me", records, flips, words);
        assert_eq!(dropped, 0);
        let mut sent = 0;
        let mut flips_sent = 0;
        let mut words_sent = 0;
        for message in &messages {
            assert!(message.len() <= MESSAGE_LIMIT, "{}", message.len());
            let Ok(batch) = serde_json::from_slice::<Batch>(message) else {
                panic!("a batch");
            };
            // Never both records and a flip or a word in one message.
            assert!(
                batch.records.is_empty() || (batch.breakers.is_empty() && batch.admin.is_empty())
            );
            sent += batch.records.len();
            flips_sent += batch.breakers.len();
            words_sent += batch.admin.len();
        }
        assert_eq!((sent, flips_sent, words_sent), (400, 1, 1));
        assert!(messages.len() > 2, "split by size");
    }

    #[test]
    fn an_observation_too_large_alone_is_counted_not_sent() {
        let (messages, dropped) =
            messages("me", vec![record(1), record(2_000)], Vec::new(), Vec::new());
        assert_eq!(dropped, 1);
        assert_eq!(messages.len(), 1);
    }
}
