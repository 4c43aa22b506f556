//! Dump every routing table of the current network namespace with
//! `routewarden::observe::routes::dump_routes`, keeping a few wanted keys, and
//! print what was found (used by `tests/bench/dump.sh`).
//!
//! Usage: `dump_routes [TABLE:PREFIX]...`, e.g. `dump_routes 254:10.0.0.0/24`.
//! Without arguments, ten keys of the main table are wanted.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::Context;
use routewarden::model::RouteKey;
use routewarden::observe::routes::dump_routes;

fn main() -> anyhow::Result<()> {
    let wanted = wanted(std::env::args().skip(1).collect())?;
    let start = Instant::now();
    let dump = dump_routes(&wanted)?;
    let elapsed = start.elapsed();
    for route in &dump.routes {
        println!("{route:?}");
    }
    println!(
        "wanted={} matched={} total={} ipv4={} ipv6={} skipped={} attempts={} seconds={:.3}",
        wanted.len(),
        dump.routes.len(),
        dump.total,
        dump.ipv4,
        dump.ipv6,
        dump.skipped,
        dump.attempts,
        elapsed.as_secs_f64()
    );
    Ok(())
}

fn wanted(args: Vec<String>) -> anyhow::Result<HashSet<RouteKey>> {
    if args.is_empty() {
        let keys = (0..10).map(|i| RouteKey::new(254, format!("10.{i}.1.0/24").parse().expect("literal")));
        return Ok(keys.collect());
    }
    args.iter().map(|a| parse_key(a)).collect()
}

fn parse_key(arg: &str) -> anyhow::Result<RouteKey> {
    let (table, prefix) = arg.split_once(':').context("expected TABLE:PREFIX")?;
    let table = table.parse().with_context(|| format!("bad table in {arg:?}"))?;
    let prefix = prefix.parse().with_context(|| format!("bad prefix in {arg:?}"))?;
    Ok(RouteKey::new(table, prefix))
}
