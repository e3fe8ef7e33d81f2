//! `tocsin-twilio-sim`: the Twilio simulator on its own, for trying Tocsin without a Twilio
//! account. Point `TWILIO_API_BASE` at it and use the account SID and token it prints.

use clap::Parser;
use std::net::SocketAddr;
use tocsin_twilio_sim::{Behaviour, SimConfig, SimServer};

/// Twilio's call API with scripted operators.
#[derive(Debug, Parser)]
#[command(name = "tocsin-twilio-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// The account SID clients must use (default: a random one, printed).
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    account_sid: Option<String>,
    /// The account's auth token (default: a random one, printed).
    #[arg(long, env = "TWILIO_AUTH_TOKEN")]
    auth_token: Option<String>,
    /// How many times faster than real time calls run.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// A scripted number, `+15550100001=accept`; behaviours: accept, pass, keys:<digits>,
    /// no-answer, busy, failed, voicemail, hang-up, slow:<seconds>:<behaviour>.
    #[arg(long = "number", value_parser = parse_number)]
    numbers: Vec<(String, Behaviour)>,
    /// What numbers without a script do.
    #[arg(long, default_value = "no-answer")]
    default: Behaviour,
}

fn parse_number(text: &str) -> Result<(String, Behaviour), String> {
    let (number, behaviour) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected <number>=<behaviour>"))?;
    Ok((number.to_owned(), behaviour.parse()?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut config = SimConfig::new();
    if let Some(sid) = args.account_sid {
        config.account_sid = sid;
    }
    if let Some(token) = args.auth_token {
        config.auth_token = token;
    }
    config.speed = args.speed;
    config.default_behaviour = args.default;
    config.numbers = args.numbers.into_iter().collect();
    let (sid, token) = (config.account_sid.clone(), config.auth_token.clone());
    let server = SimServer::start(config, args.listen).await?;
    println!(
        "TWILIO_API_BASE={} TWILIO_ACCOUNT_SID={sid} TWILIO_AUTH_TOKEN={token}",
        server.api_base()
    );
    tokio::signal::ctrl_c().await?;
    server.stop().await;
    Ok(())
}
