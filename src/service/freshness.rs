//! Whether this instance may trust its caches, and the task that keeps them in line
//! with every other instance's writes.
//!
//! With several instances on one PostgreSQL database, each write's `Changes` reach
//! every instance as a notice sent in the write's own transaction, and each applies
//! them through `Caches::apply`, as it does its own. Every 250 ms an instance also
//! sends itself a heartbeat through the same channel. Notices arrive in commit order,
//! so receiving its own heartbeat sent at time T proves that every change committed
//! before T has been applied here. The caches are trusted only while the channel is up
//! and the newest heartbeat received was sent less than a second ago; otherwise every
//! lookup reads the database, and a database that fails answers 503. A lost channel
//! may have lost notices, so when it returns every cache is emptied before it is
//! trusted again. On SQLite there is one instance and the caches are always trusted.

use super::Gateway;
use crate::store::{Heartbeat, Notice};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often an instance sends itself a heartbeat.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(250);
/// A heartbeat older than this, and the caches are not trusted.
const TRUSTED_FOR: Duration = Duration::from_secs(1);
/// How long to wait before reconnecting a channel that failed.
const RECONNECT_AFTER: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Freshness {
    /// False for a database only this instance uses: the caches are always right.
    shared: bool,
    /// This instance's name in heartbeats: random, so restarts never reuse it.
    instance: String,
    epoch: Instant,
    /// When the newest heartbeat of ours that came back was sent, in milliseconds since
    /// `epoch`, plus one (zero: none yet).
    newest_beat: AtomicU64,
    /// Up from the first heartbeat after a (re)connect and the flush before it, down
    /// from the moment the channel fails.
    channel_up: AtomicBool,
}

impl Freshness {
    pub fn new(shared: bool) -> Self {
        Freshness {
            shared,
            instance: super::token_text::random_string(12),
            epoch: Instant::now(),
            newest_beat: AtomicU64::new(0),
            channel_up: AtomicBool::new(false),
        }
    }

    /// Whether a cached answer may be given without asking the database.
    pub fn trusted(&self) -> bool {
        if !self.shared {
            return true;
        }
        let newest = self.newest_beat.load(Ordering::SeqCst);
        self.channel_up.load(Ordering::SeqCst)
            && newest > 0
            && self.millis().saturating_sub(newest - 1) < TRUSTED_FOR.as_millis() as u64
    }

    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn heartbeat(&self) -> Notice {
        Notice::Heartbeat(Heartbeat {
            instance: self.instance.clone(),
            sent_ms: self.millis(),
        })
    }

    /// When `beat` was sent, if it is one of ours.
    fn sent_at(&self, beat: &Heartbeat) -> Option<u64> {
        (beat.instance == self.instance).then_some(beat.sent_ms)
    }
}

impl Gateway {
    /// Starts the heartbeat and the listener when other instances may share the
    /// database; both end when the gateway is dropped.
    pub fn spawn_instance_feed(self: &Arc<Self>) {
        if !self.freshness.shared {
            return;
        }
        self.every(HEARTBEAT_EVERY, async |gateway| {
            let beat = gateway.freshness.heartbeat();
            if let Err(e) = gateway.store.notify(&beat).await {
                tracing::warn!(error = %e, "could not send a heartbeat");
            }
        });
        let gateway = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let feed = match gateway.upgrade() {
                    Some(gateway) => gateway.store.subscribe().await,
                    None => break,
                };
                let mut feed = match feed {
                    Ok(feed) => feed,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for other instances' changes");
                        tokio::time::sleep(RECONNECT_AFTER).await;
                        continue;
                    }
                };
                loop {
                    let next = feed.next().await;
                    let Some(gateway) = gateway.upgrade() else {
                        return;
                    };
                    match next {
                        Ok(Some(notice)) => gateway.receive(notice).await,
                        Ok(None) => gateway.channel_lost("the connection was lost"),
                        Err(e) => {
                            gateway.channel_lost(&e.to_string());
                            tokio::time::sleep(RECONNECT_AFTER).await;
                        }
                    }
                }
            }
        });
    }

    fn channel_lost(&self, why: &str) {
        if self.freshness.channel_up.swap(false, Ordering::SeqCst) {
            tracing::warn!(
                why,
                "the change channel is down: answering from the database until it returns"
            );
        }
    }

    async fn receive(&self, notice: Notice) {
        let sent_at = match &notice {
            Notice::Heartbeat(beat) => self.freshness.sent_at(beat),
            Notice::Changes { .. } | Notice::ForgetTenant(_) | Notice::ForgetAll => None,
        };
        if let Some(sent_at) = sent_at {
            if !self.freshness.channel_up.load(Ordering::SeqCst) {
                // Notices may have been lost while the channel was down: nothing cached
                // before now may be trusted.
                if let Err(e) = self.apply_notice(&Notice::ForgetAll).await {
                    tracing::warn!(error = %e, "could not empty the caches; still distrusting them");
                    return;
                }
                self.freshness.channel_up.store(true, Ordering::SeqCst);
                tracing::info!("the change channel is up: caches are trusted again");
            }
            self.freshness
                .newest_beat
                .fetch_max(sent_at + 1, Ordering::SeqCst);
            return;
        }
        if let Err(e) = self.apply_notice(&notice).await {
            // The tenant tables could not be reloaded: stop trusting the caches until
            // the next heartbeat has emptied them.
            self.channel_lost(&e.to_string());
            return;
        }
        if let Notice::Changes {
            committed_at_ms, ..
        } = notice
        {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let delay = u64::try_from(now_ms - committed_at_ms).unwrap_or(0);
            self.metrics
                .invalidation_delay(Duration::from_millis(delay));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_instance_always_trusts_its_caches() {
        assert!(Freshness::new(false).trusted());
    }

    #[test]
    fn heartbeats_travel_as_the_text_every_release_sends() {
        let beat = Notice::Heartbeat(Heartbeat {
            instance: "a:b".into(),
            sent_ms: 42,
        });
        let text = serde_json::to_string(&beat).unwrap();
        assert_eq!(text, r#"{"heartbeat":"a:b:42"}"#);
        assert_eq!(serde_json::from_str::<Notice>(&text).unwrap(), beat);
        assert!(serde_json::from_str::<Notice>(r#"{"heartbeat":"no-time"}"#).is_err());
    }

    #[test]
    fn shared_caches_are_trusted_only_after_a_fresh_heartbeat_of_ours() {
        let mut freshness = Freshness::new(true);
        freshness.epoch -= Duration::from_secs(10);
        assert!(!freshness.trusted(), "nothing heard yet");
        let Notice::Heartbeat(beat) = freshness.heartbeat() else {
            unreachable!()
        };
        let theirs = Heartbeat::try_from("someone-else:5".to_owned()).unwrap();
        assert_eq!(freshness.sent_at(&theirs), None);
        let sent = freshness.sent_at(&beat).unwrap();
        freshness.newest_beat.store(sent + 1, Ordering::SeqCst);
        assert!(
            !freshness.trusted(),
            "a heartbeat, but the channel is not up"
        );
        freshness.channel_up.store(true, Ordering::SeqCst);
        assert!(freshness.trusted());
        // The newest heartbeat was sent more than a second ago.
        let old = freshness.millis() - 1_500;
        freshness.newest_beat.store(old + 1, Ordering::SeqCst);
        assert!(!freshness.trusted());
    }
}
