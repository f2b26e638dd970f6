//! `vk-sim`: starts the simulator with the settings given on the command line (see `--help`),
//! prints where it listens and which tokens it issued, and serves until Ctrl-C.
#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = vk_sim::SimConfig::parse();
    let sim = vk_sim::spawn(config).await?;
    let named = sim.named();
    println!(
        "vk-sim: {} users, graph generated in {:.2?}",
        sim.users(),
        sim.generation_time()
    );
    println!("api (VK methods, /tokens, /sim): {}", sim.api_url());
    println!("proxy:                           {}", sim.proxy_url());
    println!("token manager api key:           {}", sim.manager_api_key());
    println!("proxy key:                       {}", sim.proxy_key());
    for (i, t) in sim.pool_tokens().iter().enumerate() {
        println!("global pool token {i}:             {t}");
    }
    println!("ip-bound token:                  {}", sim.ip_bound_token());
    println!("revoked token:                   {}", sim.revoked_token());
    println!("banned-user token:               {}", sim.banned_token());
    for (name, id) in [
        ("hub", named.hub),
        ("open", named.open),
        ("closed_friend", named.closed_friend),
    ] {
        println!("user token of {name} (id {id}):    {}", sim.user_token(id));
    }
    println!("named users: {}", serde_json::to_string(&named)?);
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
