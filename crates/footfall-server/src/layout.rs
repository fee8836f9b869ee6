//! Bringing a store written by the first layout to the day-record layout, once.
//!
//! The counting library reads a site written by the first layout correctly as it is (its
//! first read carries the old all-time totals into the site's fold), so nothing waits for
//! this; the upgrade only makes that happen for every registered site and deletes the
//! week, month and all-time keys nothing reads any more. It runs in the background at
//! start-up until it has succeeded once for the store (a service-wide marker,
//! [`keys::layout`], then says so), and `footfall migrate --upgrade-layout` runs it on
//! demand, for example once more after the last instance of an older release stopped
//! writing those keys.

use std::sync::Arc;

use footfall::counter;
use footfall::keys;
use footfall::store::Store;
use jiff::Timestamp;

use crate::sites::Site;

/// The value of [`keys::layout`] once every registered site is on the day-record layout.
pub const CURRENT: &[u8] = b"2";

/// What [`upgrade`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Upgraded {
    /// Sites brought to the current layout (0 when the store already was).
    pub sites: usize,
    /// Layout-1 keys named for deletion.
    pub legacy_keys: usize,
}

/// Upgrades every site in `sites`, then marks the store; with `force`, also when the
/// store is already marked.
pub async fn upgrade<S: Store>(
    store: &S,
    sites: &[Arc<Site>],
    force: bool,
    now: Timestamp,
) -> Result<Upgraded, footfall::Error> {
    let marker = keys::layout();
    if !force && store.get(&marker, now).await?.as_deref() == Some(CURRENT) {
        return Ok(Upgraded::default());
    }
    let mut done = Upgraded::default();
    for site in sites {
        let upgrade = counter::upgrade_layout(store, &site.id, &site.rules, now).await?;
        done.sites += 1;
        done.legacy_keys += upgrade.legacy_keys;
    }
    store.set(&marker, CURRENT, None).await?;
    Ok(done)
}
