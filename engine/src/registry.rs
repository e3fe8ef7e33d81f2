//! The templates the server runs: the built-ins and uploaded components, each id mapped to
//! its current component. A new version of an id takes over for the next evaluation.

use crate::builtins;
use crate::clock::Clock;
use crate::sandbox::{self, Plugin, Sandbox};
use crate::store::templates::{NewComponent, StoredTemplate};
use crate::store::{self, Store};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// A template ready to evaluate.
#[derive(Debug)]
pub struct Registered {
    /// The loaded component.
    pub plugin: Plugin,
    /// Its registration.
    pub stored: StoredTemplate,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The component could not be loaded.
    #[error(transparent)]
    Sandbox(#[from] sandbox::Error),
    /// Its description is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// It conflicts with what is registered.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// What an accepted upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// A new template id.
    Created,
    /// A newer version of an existing id.
    Upgraded,
    /// The very component already registered; nothing changed.
    Unchanged,
}

/// The registry.
#[derive(Debug)]
pub struct Registry {
    sandbox: Sandbox,
    templates: RwLock<BTreeMap<String, Arc<Registered>>>,
}

fn parse_version(v: &str) -> Option<semver::Version> {
    semver::Version::parse(v).ok()
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && id.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Registry {
    /// Registers the built-ins the store lacks (or holds at an older version), then loads
    /// every registered template.
    pub async fn open(store: &Store, sandbox: Sandbox, clock: &Clock) -> Result<Self, UploadError> {
        let stored: BTreeMap<String, StoredTemplate> = store
            .load_templates()
            .await?
            .into_iter()
            .map(|(t, _)| (t.info.id.clone(), t))
            .collect();
        // Built-ins loaded here are kept, by digest, for the second pass to reuse.
        let mut loaded: BTreeMap<String, Plugin> = BTreeMap::new();
        for (id, wasm) in builtins::BUILTINS {
            let plugin = sandbox.load(wasm)?;
            let newer = match stored.get(*id) {
                None => true,
                Some(current) => {
                    current.builtin
                        && current.digest != plugin.digest()
                        && parse_version(&plugin.info().version)
                            >= parse_version(&current.info.version)
                }
            };
            if newer {
                let component = NewComponent {
                    info: plugin.info(),
                    digest: plugin.digest(),
                    wasm,
                    builtin: true,
                    uploaded_by: None,
                };
                store.register_component(component, clock.now()).await?;
            }
            loaded.insert(plugin.digest().to_owned(), plugin);
        }
        let mut templates = BTreeMap::new();
        for (stored, wasm) in store.load_templates().await? {
            let plugin = match loaded.remove(&stored.digest) {
                Some(plugin) => plugin,
                None => sandbox.load(&wasm)?,
            };
            templates.insert(
                stored.info.id.clone(),
                Arc::new(Registered { plugin, stored }),
            );
        }
        tracing::info!(templates = templates.len(), "templates loaded");
        Ok(Self {
            sandbox,
            templates: RwLock::new(templates),
        })
    }

    /// Loads what another node registered: every stored template whose component differs
    /// from the one loaded here.
    pub async fn refresh(&self, store: &Store) -> Result<(), UploadError> {
        for (stored, wasm) in store.load_templates().await? {
            if self
                .get(&stored.info.id)
                .is_some_and(|current| current.stored.digest == stored.digest)
            {
                continue;
            }
            let plugin = self.sandbox.load(&wasm)?;
            tracing::info!(template = %stored.info.id, version = %stored.info.version, "loaded a template registered by another node");
            self.templates.write().expect("registry lock").insert(
                stored.info.id.clone(),
                Arc::new(Registered { plugin, stored }),
            );
        }
        Ok(())
    }

    /// The template with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Registered>> {
        self.templates
            .read()
            .expect("registry lock")
            .get(id)
            .cloned()
    }

    /// Every template, in id order.
    pub fn list(&self) -> Vec<Arc<Registered>> {
        self.templates
            .read()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }

    /// Validates, compiles and registers an uploaded component.
    pub async fn upload(
        &self,
        store: &Store,
        wasm: &[u8],
        uploaded_by: &str,
        clock: &Clock,
    ) -> Result<(Arc<Registered>, Upload), UploadError> {
        let plugin = self.sandbox.load(wasm)?;
        let info = plugin.info().clone();
        if !valid_id(&info.id) {
            return Err(UploadError::Invalid(format!(
                "template id {:?} must be 1 to 64 lowercase letters, digits or underscores, starting with a letter",
                info.id
            )));
        }
        let Some(version) = parse_version(&info.version) else {
            return Err(UploadError::Invalid(format!(
                "template version {:?} is not a semantic version such as 1.2.0",
                info.version
            )));
        };
        let outcome = match self.get(&info.id) {
            None => Upload::Created,
            Some(current) if current.stored.digest == plugin.digest() => {
                return Ok((current, Upload::Unchanged));
            }
            Some(current) => {
                let current_version = parse_version(&current.stored.info.version);
                if current_version.as_ref().is_some_and(|c| &version <= c) {
                    return Err(UploadError::Conflict(format!(
                        "template {} is at version {}; an upload must carry a higher version than that, not {}",
                        info.id, current.stored.info.version, info.version
                    )));
                }
                Upload::Upgraded
            }
        };
        let now = clock.now();
        let component = NewComponent {
            info: &info,
            digest: plugin.digest(),
            wasm,
            builtin: false,
            uploaded_by: Some(uploaded_by),
        };
        store.register_component(component, now).await?;
        let created_at = self.get(&info.id).map_or(now, |c| c.stored.created_at);
        let registered = Arc::new(Registered {
            stored: StoredTemplate {
                info: info.clone(),
                digest: plugin.digest().to_owned(),
                builtin: false,
                created_at,
                updated_at: now,
            },
            plugin,
        });
        self.templates
            .write()
            .expect("registry lock")
            .insert(info.id.clone(), registered.clone());
        Ok((registered, outcome))
    }
}
