//! Every alert in memory, and the index from data to the alerts that read it, so a change
//! re-evaluates exactly the alerts it can affect.
//!
//! An alert's dependencies are the queries its last evaluation asked. A new alert has none
//! yet and is evaluated when created, which records them.

use crate::store::Store;
use crate::store::alerts::Alert;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use tocsin_sdk::Query;
use tocsin_sdk::time::Timestamp;

/// The narrowest description of data a query reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    /// Entities of a type owned by one owner.
    EntityOwner(String, String),
    /// One entity.
    Entity(String, String),
    /// Every entity of a type.
    EntityType(String),
    /// Events of one owner.
    EventOwner(String),
    /// Any event.
    AnyEvent,
}

fn key_of(query: &Query) -> Key {
    match query {
        Query::Entities(q) => match (&q.owner_id, &q.entity_id) {
            (Some(owner), _) => Key::EntityOwner(q.entity_type.clone(), owner.clone()),
            (None, Some(id)) => Key::Entity(q.entity_type.clone(), id.clone()),
            (None, None) => Key::EntityType(q.entity_type.clone()),
        },
        Query::Events(q) => match &q.owner_id {
            Some(owner) => Key::EventOwner(owner.clone()),
            None => Key::AnyEvent,
        },
    }
}

/// An alert's id, allocated once and shared by every index that names the alert.
type AlertId = Arc<str>;

#[derive(Debug, Default)]
struct Inner {
    alerts: BTreeMap<AlertId, Arc<Alert>>,
    /// What is read, and by whom: ordered, so one key's readers are a range. (A set per
    /// key would cost a table per key, and most keys have one reader.)
    readers: BTreeSet<(Key, AlertId)>,
    reads: HashMap<AlertId, Vec<Key>>,
    /// Alerts never evaluated: what they read is unknown, so any change may affect them.
    undetermined: HashSet<AlertId>,
    /// The alerts this node evaluates, when it shares them with other nodes; `None`: all.
    here: Option<HashSet<AlertId>>,
    /// The undetermined alerts this node evaluates (all of them when `here` is `None`).
    undetermined_here: HashSet<AlertId>,
    /// Alerts whose last evaluation is newer here than in the store, differing in its time
    /// alone.
    times_unsaved: HashSet<AlertId>,
}

impl Inner {
    /// The shared id of an alert in the catalog, or a new one.
    fn id(&self, alert_id: &str) -> AlertId {
        match self.alerts.get_key_value(alert_id) {
            Some((id, _)) => id.clone(),
            None => alert_id.into(),
        }
    }
}

/// The catalog.
#[derive(Debug, Default)]
pub struct Catalog {
    inner: RwLock<Inner>,
}

impl Catalog {
    /// A catalog of every stored alert, with its recorded dependencies.
    pub async fn load(store: &Store) -> crate::store::Result<Self> {
        let catalog = Self::default();
        store
            .load_alerts(|alert, dependencies| {
                let alert = catalog.put(alert);
                catalog.set_dependencies(&alert.id, &dependencies);
            })
            .await?;
        Ok(catalog)
    }

    /// Adds or replaces an alert.
    pub fn put(&self, alert: Alert) -> Arc<Alert> {
        let alert = Arc::new(alert);
        let mut inner = self.inner.write().expect("catalog lock");
        let id = inner.id(&alert.id);
        if alert.last_evaluation.is_none() && !inner.reads.contains_key(&id) {
            inner.undetermined.insert(id.clone());
            if inner.here.as_ref().is_none_or(|here| here.contains(&id)) {
                inner.undetermined_here.insert(id.clone());
            }
        }
        inner.alerts.insert(id, alert.clone());
        alert
    }

    /// One alert.
    pub fn get(&self, id: &str) -> Option<Arc<Alert>> {
        self.inner
            .read()
            .expect("catalog lock")
            .alerts
            .get(id)
            .cloned()
    }

    /// Up to `limit` alerts after `after_id`, in id order.
    pub fn page(&self, after_id: Option<&str>, limit: usize) -> Vec<Arc<Alert>> {
        let inner = self.inner.read().expect("catalog lock");
        let range = match after_id {
            Some(after) => inner
                .alerts
                .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => inner.alerts.range::<str, _>(..),
        };
        range.take(limit).map(|(_, a)| a.clone()).collect()
    }

    /// Every alert.
    pub fn all(&self) -> Vec<Arc<Alert>> {
        self.inner
            .read()
            .expect("catalog lock")
            .alerts
            .values()
            .cloned()
            .collect()
    }

    /// Records what an alert's last evaluation read.
    pub fn set_dependencies(&self, alert_id: &str, queries: &[Query]) {
        let keys: Vec<Key> = queries.iter().map(key_of).collect();
        let mut inner = self.inner.write().expect("catalog lock");
        let id = inner.id(alert_id);
        if let Some(old) = inner.reads.remove(alert_id) {
            for key in old {
                inner.readers.remove(&(key, id.clone()));
            }
        }
        for key in &keys {
            inner.readers.insert((key.clone(), id.clone()));
        }
        inner.reads.insert(id, keys);
        inner.undetermined.remove(alert_id);
        inner.undetermined_here.remove(alert_id);
    }

    /// Notes which alerts this node evaluates, of those it shares with other nodes: the
    /// undetermined alerts other nodes hold are theirs to judge.
    pub fn set_here<'a>(&self, alert_ids: impl IntoIterator<Item = &'a String>) {
        let mut inner = self.inner.write().expect("catalog lock");
        let here: HashSet<AlertId> = alert_ids.into_iter().map(|id| inner.id(id)).collect();
        inner.undetermined_here = inner
            .undetermined
            .iter()
            .filter(|id| here.contains(*id))
            .cloned()
            .collect();
        inner.here = Some(here);
    }

    /// Whether `queries` read what the alert's recorded dependencies say it reads.
    pub fn reads_as_recorded(&self, alert_id: &str, queries: &[Query]) -> bool {
        let inner = self.inner.read().expect("catalog lock");
        inner.reads.get(alert_id).is_some_and(|keys| {
            keys.len() == queries.len() && keys.iter().zip(queries).all(|(k, q)| *k == key_of(q))
        })
    }

    /// Notes that the alert's last evaluation differs from the stored one in its time alone.
    pub fn time_unsaved(&self, alert_id: &str) {
        let mut inner = self.inner.write().expect("catalog lock");
        let id = inner.id(alert_id);
        inner.times_unsaved.insert(id);
    }

    /// Whether an alert's last evaluation time waits to be saved.
    pub fn has_unsaved_times(&self) -> bool {
        !self
            .inner
            .read()
            .expect("catalog lock")
            .times_unsaved
            .is_empty()
    }

    /// Takes the alerts noted by [`Catalog::time_unsaved`], each with its last evaluation time.
    pub fn take_unsaved_times(&self) -> Vec<(String, Timestamp)> {
        let mut inner = self.inner.write().expect("catalog lock");
        let ids = std::mem::take(&mut inner.times_unsaved);
        ids.into_iter()
            .filter_map(|id| {
                let at = inner.alerts.get(&id)?.last_evaluation.as_ref()?.at;
                Some((id.to_string(), at))
            })
            .collect()
    }

    /// The (entity type, owner id) pairs whose entities the alert's last evaluation read.
    pub fn entity_owners_read(&self, alert_id: &str) -> Vec<(String, String)> {
        let inner = self.inner.read().expect("catalog lock");
        let Some(keys) = inner.reads.get(alert_id) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|key| match key {
                Key::EntityOwner(entity_type, owner) => Some((entity_type.clone(), owner.clone())),
                _ => None,
            })
            .collect()
    }

    fn readers_of(&self, keys: &[Key]) -> Affected {
        let inner = self.inner.read().expect("catalog lock");
        let mut found: HashSet<&str> = inner.undetermined_here.iter().map(|id| &**id).collect();
        let first: AlertId = "".into();
        for key in keys {
            found.extend(
                inner
                    .readers
                    .range((key.clone(), first.clone())..)
                    .take_while(|(read, _)| read == key)
                    .map(|(_, id)| &**id),
            );
        }
        Affected {
            alerts: found.into_iter().map(str::to_owned).collect(),
            undetermined_elsewhere: inner.undetermined.len() > inner.undetermined_here.len(),
        }
    }

    /// Alerts that read this entity.
    pub fn affected_by_entity(
        &self,
        entity_type: &str,
        entity_id: &str,
        owner_ids: &[Option<&str>],
    ) -> Affected {
        let mut keys = vec![
            Key::Entity(entity_type.to_owned(), entity_id.to_owned()),
            Key::EntityType(entity_type.to_owned()),
        ];
        for owner in owner_ids.iter().flatten() {
            keys.push(Key::EntityOwner(
                entity_type.to_owned(),
                (*owner).to_owned(),
            ));
        }
        self.readers_of(&keys)
    }

    /// Alerts that read events of these owners.
    pub fn affected_by_events<'a>(&self, owner_ids: impl Iterator<Item = &'a str>) -> Affected {
        let mut keys = vec![Key::AnyEvent];
        keys.extend(owner_ids.map(|o| Key::EventOwner(o.to_owned())));
        self.readers_of(&keys)
    }
}

/// The alerts a change may affect.
#[derive(Debug)]
pub struct Affected {
    /// Those whose recorded reads it touches, and the undetermined ones this node
    /// evaluates.
    pub alerts: Vec<String>,
    /// Whether undetermined alerts that other nodes evaluate may read it too.
    pub undetermined_elsewhere: bool,
}
