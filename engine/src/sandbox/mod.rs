//! The WebAssembly sandbox that runs alert templates.
//!
//! One shared [`wasmtime::Engine`]; each loaded template is a [`Plugin`] holding a
//! pre-instantiated component; each evaluation (or batch of evaluations of one template)
//! gets an [`Instance`]: its own `Store` with a memory cap, a deadline and an output cap.
//! Guests get no capabilities: the only host function they can reach is the one that
//! reports a panic message, and the WASI interfaces Rust's standard library links are
//! present only as functions that trap.

mod cache;
mod imports;
mod ticker;

pub use cache::Origin;

use crate::sandbox::imports::check_imports;
use crate::sandbox::ticker::{EPOCH_TICK, Ticker};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tocsin_sdk::protocol::{Outcome, Runner};
use tocsin_sdk::time::{from_micros, to_micros};
use tocsin_sdk::{Answer, Context, Query, RawFinding, TemplateInfo, Verdict};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter,
    Store, Trap,
};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../sdk/wit/v1",
        world: "plugin",
        // Arguments borrow the host's data: an entity's strings are copied once, into the
        // guest's memory, and never into an intermediate value first.
        ownership: Borrowing {
            duplicate_if_necessary: false
        },
    });
}

use bindings::exports::tocsin::plugin::template as wit;
use bindings::tocsin::plugin::types as witty;

/// The plugin interface major version this host serves.
pub const INTERFACE_MAJOR: u64 = 1;

/// Pooled instance slots. Evaluations run on a small blocking pool, so a few dozen
/// concurrent instances is plenty; each slot reserves address space, not memory.
const POOLED_INSTANCES: u32 = 64;

/// Limits applied to every evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock bound of one call into the guest.
    pub timeout: Duration,
    /// Linear memory cap of one instance, in bytes.
    pub memory_bytes: usize,
    /// Cap on what one call may return (queries, findings, descriptions), in bytes.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Built-in templates evaluate in microseconds; 100 ms leaves room for big
            // answers while keeping a runaway plugin from holding a worker.
            timeout: Duration::from_millis(100),
            // The built-ins use under 2 MiB; 64 MiB allows large answer sets.
            memory_bytes: 64 << 20,
            // A finding is a few hundred bytes; 1 MiB is thousands of subjects.
            output_bytes: 1 << 20,
        }
    }
}

/// Why loading or running a plugin failed. Every variant reads as a sentence for the
/// alert's error log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not a WebAssembly component, or not one this engine can compile.
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    /// Built against an interface major version this host does not serve.
    #[error(
        "the plugin is built against interface tocsin:plugin@{found}; this host serves tocsin:plugin@{INTERFACE_MAJOR}.x"
    )]
    UnsupportedVersion {
        /// The version the component exports.
        found: String,
    },
    /// The component does not export the template interface.
    #[error("the component does not export tocsin:plugin/template; build it with tocsin-sdk")]
    NotATemplate,
    /// The component imports things the sandbox does not grant.
    #[error("the plugin imports {}; the sandbox allows none of them", .imports.join(", "))]
    ForbiddenImports {
        /// Each forbidden import, with the reason: `` `wasi:sockets/tcp@0.2.6` (templates get no network) ``.
        imports: Vec<String>,
    },
    /// The call ran past the deadline.
    #[error("the plugin ran longer than the {limit:?} limit and was stopped")]
    Timeout {
        /// The configured bound.
        limit: Duration,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("the plugin tried to use {requested} bytes of memory; the cap is {limit} bytes")]
    MemoryExceeded {
        /// Bytes the guest asked for.
        requested: usize,
        /// The configured cap.
        limit: usize,
    },
    /// The call returned more than the output cap.
    #[error("the plugin returned {size} bytes; the cap is {limit} bytes")]
    OutputTooLarge {
        /// Bytes returned.
        size: usize,
        /// The configured cap.
        limit: usize,
    },
    /// The guest panicked.
    #[error("the plugin panicked: {message}")]
    Panicked {
        /// The panic message and location.
        message: String,
    },
    /// The guest trapped for another reason.
    #[error("the plugin trapped: {0}")]
    Trapped(String),
    /// The guest returned an error (bad parameters, a malformed answer).
    #[error("{0}")]
    Plugin(String),
    /// The parameters do not match the template's schema.
    #[error("parameters at {path}: {message}")]
    InvalidParams {
        /// JSON pointer to the problem (`/threshold`), or `/` for the whole document.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The instance is unusable after an earlier failure.
    #[error("this plugin instance failed earlier and cannot be reused")]
    Poisoned,
    /// The evaluation could not complete (its data could not be answered, or it asked for
    /// more data too many times).
    #[error("{0}")]
    Evaluation(String),
    /// The sandbox itself could not be set up.
    #[error("sandbox setup: {0}")]
    Setup(String),
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self::Evaluation(message)
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The shared engine, limits and compiled-artifact cache.
#[derive(Clone)]
pub struct Sandbox {
    engine: Engine,
    ticker: Arc<Ticker>,
    limits: Limits,
    cache_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A sandbox with these limits, caching compiled components in `cache_dir` when given.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOLED_INSTANCES)
            .total_core_instances(POOLED_INSTANCES * 4)
            .total_memories(POOLED_INSTANCES * 2)
            .total_tables(POOLED_INSTANCES * 4)
            .max_memories_per_component(4)
            // Reset a slot's memory with memset rather than handing pages back to the
            // kernel, so the next instance in the slot takes no page faults on the stack and
            // heap a template touches (a Rust guest starts with about 1.1 MiB). With
            // PAGEMAP_SCAN (Linux 6.7+) only the pages actually touched are reset.
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(Enabled::Auto)
            // The limiter enforces the real cap and reports it; the pool's bound is a
            // backstop one page above it.
            .max_memory_size(limits.memory_bytes + (64 << 10));
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| Error::Setup(e.to_string()))?;
        let ticker = Arc::new(Ticker::start(&engine));
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Setup(format!("cache directory {}: {e}", dir.display())))?;
        }
        Ok(Self {
            engine,
            ticker,
            limits,
            cache_dir,
        })
    }

    /// The limits every evaluation runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Validates, compiles (or loads from the cache) and describes a component.
    pub fn load(&self, wasm: &[u8]) -> Result<Plugin> {
        let digest = hex::encode(Sha256::digest(wasm));
        let (component, origin) =
            cache::compile(&self.engine, self.cache_dir.as_deref(), wasm, &digest)?;
        check_imports(&self.engine, &component)?;
        let mut linker = Linker::<State>::new(&self.engine);
        bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| Error::Setup(e.to_string()))?;
        // What is left are the WASI interfaces `check_imports` allowed: present so the
        // component links, trapping if ever called.
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(|e| Error::Setup(e.to_string()))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| Error::Invalid(format!("{e:#}")))?;
        let pre = bindings::PluginPre::new(pre).map_err(|_| Error::NotATemplate)?;
        let mut plugin = Plugin {
            inner: Arc::new(PluginInner {
                sandbox: self.clone(),
                pre,
                digest,
                origin,
                info: placeholder_info(),
                params_validator: None,
            }),
        };
        // Describing runs once per upload, on an instance whose pages are all still to be
        // faulted in: on a loaded machine that alone has taken over the 100 ms evaluations
        // get. It gets longer, still bounded, so a busy server does not refuse good plugins.
        let mut first = plugin.instance()?;
        first.limits.timeout = first.limits.timeout.max(DESCRIBE_AT_LOAD);
        let info = first.describe()?;
        drop(first);
        let validator = params_validator(&info.params_schema).map_err(|e| {
            Error::Plugin(format!(
                "the plugin's parameter schema is not valid JSON Schema: {e}"
            ))
        })?;
        let inner = Arc::get_mut(&mut plugin.inner).expect("no other handle yet");
        inner.info = info;
        inner.params_validator = Some(validator);
        Ok(plugin)
    }
}

/// The SDK's schema of a [`tocsin_sdk::Decimal`] parameter carries this pattern. A string
/// can match it and still be no decimal (`"1e30"`, 40 digits), which the template would
/// only find at its first evaluation; such strings are marked with the `decimal` format,
/// checked by parsing them as the template will.
const SDK_DECIMAL_PATTERN: &str = "^\\s*[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?\\s*$";

fn params_validator(
    schema: &serde_json::Value,
) -> std::result::Result<jsonschema::Validator, jsonschema::ValidationError<'static>> {
    fn mark(schema: &mut serde_json::Value) {
        match schema {
            serde_json::Value::Object(map) => {
                if map.get("pattern").and_then(|p| p.as_str()) == Some(SDK_DECIMAL_PATTERN) {
                    map.insert("format".into(), "decimal".into());
                }
                map.values_mut().for_each(mark);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(mark),
            _ => {}
        }
    }
    let mut schema = schema.clone();
    mark(&mut schema);
    jsonschema::options()
        .with_format("decimal", |text: &str| {
            text.parse::<tocsin_sdk::Decimal>().is_ok()
        })
        .should_validate_formats(true)
        .build(&schema)
}

fn placeholder_info() -> TemplateInfo {
    TemplateInfo {
        id: String::new(),
        version: String::new(),
        name: String::new(),
        description: String::new(),
        entity_type: None,
        owner_type: None,
        params_schema: serde_json::Value::Null,
        report_schema: serde_json::Value::Null,
        auto_resolvable: false,
        default_interval_minutes: 0,
    }
}

/// A loaded template: the pre-instantiated component and its description.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    sandbox: Sandbox,
    pre: bindings::PluginPre<State>,
    digest: String,
    origin: Origin,
    info: TemplateInfo,
    params_validator: Option<jsonschema::Validator>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.inner.info.id)
            .field("version", &self.inner.info.version)
            .field("digest", &self.inner.digest)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// What the template says about itself.
    pub fn info(&self) -> &TemplateInfo {
        &self.inner.info
    }

    /// Whether the native code was compiled now or read from the cache.
    pub fn origin(&self) -> Origin {
        self.inner.origin
    }

    /// SHA-256 of the component's bytes, hex.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Checks parameters against the template's schema. The error names the JSON path of
    /// the first problem.
    pub fn validate_params(&self, params: &serde_json::Value) -> Result<()> {
        let Some(validator) = &self.inner.params_validator else {
            return Ok(());
        };
        match validator.iter_errors(params).next() {
            None => Ok(()),
            Some(error) => {
                let path = error.instance_path().to_string();
                Err(Error::InvalidParams {
                    path: if path.is_empty() {
                        "/".to_owned()
                    } else {
                        path
                    },
                    message: error.to_string(),
                })
            }
        }
    }

    /// A fresh, isolated instance: new store, new memory, full limits.
    pub fn instance(&self) -> Result<Instance> {
        let limits = self.inner.sandbox.limits;
        let mut store = Store::new(
            &self.inner.sandbox.engine,
            State {
                panic: None,
                memory_requested: None,
                memory_cap: limits.memory_bytes,
            },
        );
        store.limiter(|state| state);
        store.set_epoch_deadline(deadline_ticks(limits.timeout));
        let ticker = Arc::clone(&self.inner.sandbox.ticker);
        let running = ticker.running();
        let bindings = self
            .inner
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(&store, limits, e))?;
        drop(running);
        Ok(Instance {
            store,
            bindings,
            ticker,
            limits,
            poisoned: false,
        })
    }
}

/// The deadline of the `describe` a load makes (see [`Sandbox::load`]).
const DESCRIBE_AT_LOAD: Duration = Duration::from_secs(1);

fn deadline_ticks(timeout: Duration) -> u64 {
    (timeout.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64
}

/// Per-store host state.
struct State {
    panic: Option<String>,
    memory_requested: Option<usize>,
    memory_cap: usize,
}

impl bindings::tocsin::plugin::host::Host for State {
    fn panicked(&mut self, message: String) {
        // Keep the first message; a panic while panicking is not more informative.
        self.panic.get_or_insert(message);
    }
}

impl witty::Host for State {}

impl ResourceLimiter for State {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_requested = Some(desired);
            wasmtime::bail!("memory cap reached");
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; Rust guests use a few hundred entries.
        Ok(desired <= 100_000)
    }
}

/// Turns a wasmtime error into what happened, in the plugin author's terms.
fn classify(store: &Store<State>, limits: Limits, error: wasmtime::Error) -> Error {
    let state = store.data();
    if let Some(message) = &state.panic {
        return Error::Panicked {
            message: message.clone(),
        };
    }
    if let Some(requested) = state.memory_requested {
        return Error::MemoryExceeded {
            requested,
            limit: limits.memory_bytes,
        };
    }
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        return Error::Timeout {
            limit: limits.timeout,
        };
    }
    let text = format!("{error:#}");
    if let Some(rest) = text.split("unknown import: `").nth(1) {
        let name = rest.split('`').next().unwrap_or(rest);
        return Error::Trapped(format!(
            "it called `{name}`, which the sandbox does not provide (no environment, files, clock, randomness or console)"
        ));
    }
    Error::Trapped(text)
}

/// One live instance of a plugin. Reusing it across calls serves a batch of evaluations of
/// one template; after any failure it refuses further calls.
pub struct Instance {
    store: Store<State>,
    bindings: bindings::Plugin,
    ticker: Arc<Ticker>,
    limits: Limits,
    poisoned: bool,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// Whether a failure has retired it.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    fn call<T>(
        &mut self,
        f: impl FnOnce(&wit::Guest, &mut Store<State>) -> wasmtime::Result<T>,
    ) -> Result<T> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.store
            .set_epoch_deadline(deadline_ticks(self.limits.timeout));
        let guest = self.bindings.tocsin_plugin_template();
        let _running = self.ticker.running();
        match f(guest, &mut self.store) {
            Ok(value) => Ok(value),
            Err(e) => {
                self.poisoned = true;
                Err(classify(&self.store, self.limits, e))
            }
        }
    }

    fn check_output(&mut self, size: usize) -> Result<()> {
        if size > self.limits.output_bytes {
            // The guest is alive but misbehaving; do not trust it with the next alert.
            self.poisoned = true;
            return Err(Error::OutputTooLarge {
                size,
                limit: self.limits.output_bytes,
            });
        }
        Ok(())
    }

    /// Calls `describe`.
    pub fn describe(&mut self) -> Result<TemplateInfo> {
        let info = self.call(|g, s| g.call_describe(s))?;
        self.check_output(
            info.id.len()
                + info.name.len()
                + info.description.len()
                + info.params_schema.len()
                + info.report_schema.len(),
        )?;
        let schema = |text: &str, what: &str| {
            serde_json::from_str(text)
                .map_err(|e| Error::Plugin(format!("the plugin's {what} schema is not JSON: {e}")))
        };
        Ok(TemplateInfo {
            params_schema: schema(&info.params_schema, "parameter")?,
            report_schema: schema(&info.report_schema, "report")?,
            id: info.id,
            version: info.version,
            name: info.name,
            description: info.description,
            entity_type: info.entity_type,
            owner_type: info.owner_type,
            auto_resolvable: info.auto_resolvable,
            default_interval_minutes: info.default_interval_minutes,
        })
    }

    /// Calls `plan`.
    pub fn plan(&mut self, params: &str, ctx: &Context) -> Result<Vec<Query>> {
        let ctx = context_to_wit(ctx);
        let queries = self
            .call(|g, s| g.call_plan(s, &params.to_owned(), ctx))?
            .map_err(Error::Plugin)?;
        self.check_output(queries.iter().map(query_size).sum())?;
        Ok(queries.into_iter().map(query_from_wit).collect())
    }

    /// Calls `evaluate`.
    pub fn evaluate(&mut self, params: &str, ctx: &Context, answers: &[Answer]) -> Result<Outcome> {
        let ctx = context_to_wit(ctx);
        // What the answers borrow: the entity lists, and the sums as text.
        let parts: Vec<(Vec<witty::Entity>, String)> = answers
            .iter()
            .map(|a| match a {
                Answer::Entities(entities) => {
                    (entities.iter().map(entity_to_wit).collect(), String::new())
                }
                Answer::Events(agg) => (Vec::new(), agg.sum.to_string()),
            })
            .collect();
        let answers: Vec<witty::Answer> = answers
            .iter()
            .zip(&parts)
            .map(|(a, (entities, sum))| match a {
                Answer::Entities(_) => witty::Answer::Entities(entities),
                Answer::Events(agg) => witty::Answer::Events(witty::EventAggregate {
                    count: agg.count,
                    sum,
                }),
            })
            .collect();
        let outcome = self
            .call(|g, s| g.call_evaluate(s, &params.to_owned(), ctx, &answers))?
            .map_err(Error::Plugin)?;
        match outcome {
            witty::Outcome::More(queries) => {
                self.check_output(queries.iter().map(query_size).sum())?;
                Ok(Outcome::More(
                    queries.into_iter().map(query_from_wit).collect(),
                ))
            }
            witty::Outcome::Findings(findings) => {
                self.check_output(
                    findings
                        .iter()
                        .map(|f| f.subject.len() + f.report.len() + f.summary.len() + 16)
                        .sum(),
                )?;
                findings
                    .into_iter()
                    .map(finding_from_wit)
                    .collect::<Result<_>>()
                    .map(Outcome::Findings)
            }
        }
    }
}

impl Runner for Instance {
    type Error = Error;

    fn plan(&mut self, params: &str, ctx: &Context) -> Result<Vec<Query>> {
        Instance::plan(self, params, ctx)
    }

    fn evaluate(&mut self, params: &str, ctx: &Context, answers: &[Answer]) -> Result<Outcome> {
        Instance::evaluate(self, params, ctx, answers)
    }
}

fn context_to_wit(c: &Context) -> witty::Context<'_> {
    witty::Context {
        alert_id: &c.alert_id,
        now: to_micros(c.now),
        owner_id: c.owner_id.as_deref(),
        entity_id: c.entity_id.as_deref(),
    }
}

fn opt_len(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

fn query_size(q: &witty::Query) -> usize {
    match q {
        witty::Query::Entities(q) => {
            q.entity_type.len()
                + opt_len(&q.owner_type)
                + opt_len(&q.owner_id)
                + opt_len(&q.entity_id)
        }
        witty::Query::Events(q) => {
            16 + opt_len(&q.event_type)
                + opt_len(&q.owner_type)
                + opt_len(&q.owner_id)
                + opt_len(&q.entity_type)
                + opt_len(&q.entity_id)
                + q.attributes
                    .iter()
                    .map(|a| a.name.len() + a.value.len())
                    .sum::<usize>()
        }
    }
}

fn query_from_wit(q: witty::Query) -> Query {
    match q {
        witty::Query::Entities(q) => Query::Entities(tocsin_sdk::EntityQuery {
            entity_type: q.entity_type,
            owner_type: q.owner_type,
            owner_id: q.owner_id,
            entity_id: q.entity_id,
        }),
        witty::Query::Events(q) => Query::Events(tocsin_sdk::EventQuery {
            event_type: q.event_type,
            owner_type: q.owner_type,
            owner_id: q.owner_id,
            entity_type: q.entity_type,
            entity_id: q.entity_id,
            attributes: q
                .attributes
                .into_iter()
                .map(|a| tocsin_sdk::AttributeMatch {
                    name: a.name,
                    value: a.value,
                })
                .collect(),
            start: from_micros(q.start),
            end: from_micros(q.end),
        }),
    }
}

fn entity_to_wit(e: &tocsin_sdk::Entity) -> witty::Entity<'_> {
    witty::Entity {
        entity_type: &e.entity_type,
        entity_id: &e.entity_id,
        owner_type: e.owner_type.as_deref(),
        owner_id: e.owner_id.as_deref(),
        attributes: e.attributes.json_string(),
        updated_at: to_micros(e.updated_at),
    }
}

fn finding_from_wit(f: witty::Finding) -> Result<RawFinding> {
    let report: serde_json::Value = serde_json::from_str(&f.report).map_err(|e| {
        Error::Plugin(format!(
            "the report data of finding {:?} is not JSON: {e}",
            f.subject
        ))
    })?;
    Ok(RawFinding {
        subject: f.subject,
        verdict: match f.verdict {
            witty::Verdict::Breached => Verdict::Breached,
            witty::Verdict::Clear => Verdict::Clear,
            witty::Verdict::NoData(why) => Verdict::NoData(why),
        },
        report,
        summary: f.summary,
    })
}
