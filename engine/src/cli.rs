//! The `tocsin` command line.

use crate::builtins;
use crate::sandbox::{Limits, Plugin, Sandbox};
use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use tocsin_sdk::protocol::run;
use tocsin_sdk::testing::{Fixture, Input, fixtures_in};
use tocsin_sdk::time::parse_instant;

/// Tocsin: alert rules as WebAssembly components, incidents, and phone escalation.
#[derive(Debug, Parser)]
#[command(name = "tocsin", version)]
pub struct Cli {
    /// Where compiled components are cached between runs.
    #[arg(
        long,
        env = "TOCSIN_CACHE_DIR",
        default_value = "./data/cache",
        global = true
    )]
    cache_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server, configured by the TOCSIN_* environment variables.
    Serve {
        /// Run the demo instead: see `tocsin demo`.
        #[arg(long)]
        demo: bool,
    },
    /// Run the server as a demo: calls go to a Twilio simulator started in-process, never to
    /// a phone, and an empty database (`./data/demo.db` unless TOCSIN_DATABASE says) gets a
    /// simulated roster.
    Demo,
    /// Work with alert templates.
    #[command(subcommand)]
    Template(TemplateCommand),
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// Print what a template says about itself, as JSON.
    Describe {
        /// A component file (`.wasm`) or the id of a built-in template.
        plugin: String,
    },
    /// Run one evaluation through the sandbox and print the queries and findings as JSON.
    Run {
        /// A component file (`.wasm`) or the id of a built-in template.
        plugin: String,
        /// JSON file with the alert parameters.
        #[arg(long)]
        params: PathBuf,
        /// JSON file with the data: `{"entities": [...], "events": [...]}` or
        /// `{"answers": [...]}` (see the README).
        #[arg(long)]
        input: PathBuf,
        /// The evaluation instant, RFC 3339.
        #[arg(long)]
        now: String,
        /// The alert's `ownerDetails.id`.
        #[arg(long)]
        owner: Option<String>,
        /// The alert's `entityDetails.id`.
        #[arg(long)]
        entity: Option<String>,
    },
    /// Check fixture files (one, or every `*.json` in a folder) through the sandbox.
    Test {
        /// A component file (`.wasm`) or the id of a built-in template.
        plugin: String,
        /// A fixture file or a folder of them.
        fixtures: PathBuf,
    },
    /// List the built-in templates.
    List,
}

impl Cli {
    /// Runs the command, writing its result to `out`.
    pub fn run(self, out: &mut dyn Write) -> Result<()> {
        match self.command {
            Command::Serve { demo } => serve(demo),
            Command::Demo => serve(true),
            Command::Template(TemplateCommand::List) => {
                for (id, _) in builtins::BUILTINS {
                    writeln!(out, "{id}")?;
                }
                Ok(())
            }
            Command::Template(TemplateCommand::Test { plugin, fixtures }) => {
                let plugin = load(&self.cache_dir, &plugin)?;
                let fixtures = if fixtures.is_dir() {
                    fixtures_in(&fixtures)
                } else {
                    vec![(
                        fixtures.clone(),
                        Fixture::load(&fixtures).map_err(anyhow::Error::msg)?,
                    )]
                };
                let mut failed = 0;
                for (path, fixture) in &fixtures {
                    let outcome = plugin
                        .validate_params(&fixture.params)
                        .map_err(|e| e.to_string())
                        .and_then(|()| {
                            fixture.check(&mut plugin.instance().map_err(|e| e.to_string())?)
                        });
                    match outcome {
                        Ok(()) => {
                            writeln!(out, "ok    {} ({})", path.display(), fixture.description)?
                        }
                        Err(e) => {
                            failed += 1;
                            writeln!(
                                out,
                                "FAIL  {} ({})\n      {e}",
                                path.display(),
                                fixture.description
                            )?;
                        }
                    }
                }
                writeln!(out, "{} passed, {failed} failed", fixtures.len() - failed)?;
                if failed > 0 {
                    bail!("{failed} of {} fixtures failed", fixtures.len());
                }
                Ok(())
            }
            Command::Template(TemplateCommand::Describe { plugin }) => {
                let plugin = load(&self.cache_dir, &plugin)?;
                print_json(out, plugin.info())
            }
            Command::Template(TemplateCommand::Run {
                plugin,
                params,
                input,
                now,
                owner,
                entity,
            }) => {
                let plugin = load(&self.cache_dir, &plugin)?;
                let params: serde_json::Value = read_json(&params)?;
                plugin.validate_params(&params)?;
                let input: Input = read_json(&input)?;
                let Some(now) = parse_instant(&now) else {
                    bail!(
                        "--now {now:?} is not an RFC 3339 timestamp such as 2026-03-01T12:00:00Z"
                    );
                };
                let ctx = tocsin_sdk::Context {
                    alert_id: "cli".to_owned(),
                    now,
                    owner_id: owner,
                    entity_id: entity,
                };
                let mut instance = plugin.instance()?;
                let result = run(&mut instance, &params.to_string(), &ctx, &mut |i, q| {
                    input.answer(i, q)
                })?;
                print_json(out, &result)
            }
        }
    }
}

fn serve(demo: bool) -> Result<()> {
    let mut config = crate::config::Config::from_env()?;
    if demo {
        config.demo = true;
        if std::env::var_os("TOCSIN_DATABASE").is_none_or(|v| v.is_empty()) {
            config.database = PathBuf::from("./data/demo.db").into();
            if std::env::var_os("TOCSIN_CACHE_DIR").is_none_or(|v| v.is_empty()) {
                config.cache_dir = PathBuf::from("./data/cache");
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = crate::app::Server::start(config, crate::clock::Clock::System).await?;
        shutdown_signal().await;
        tracing::info!("shutting down");
        server.stop().await;
        Ok(())
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn load(cache_dir: &Path, plugin: &str) -> Result<Plugin> {
    let sandbox = Sandbox::new(Limits::default(), Some(cache_dir.to_owned()))?;
    let wasm = match builtins::get(plugin) {
        Some(wasm) => wasm.to_vec(),
        None if Path::new(plugin).exists() => {
            std::fs::read(plugin).with_context(|| format!("reading {plugin}"))?
        }
        None => bail!(
            "{plugin:?} is neither a file nor a built-in template (built-ins: {})",
            builtins::BUILTINS
                .iter()
                .map(|(id, _)| *id)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Ok(sandbox.load(&wasm)?)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

fn print_json<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}
