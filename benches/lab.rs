//! Builds and tears down labs many times with tcplab, and the same labs with a script of `ip`
//! and `nft` commands (one process per step, veth peers created directly in the host
//! namespaces, the very same nftables rules), and prints medians and the ratio. tcplab builds
//! with its default options, so its rules also mark packets for tracing (the script's do
//! not); further rows build the same labs with tracing and without
//! ([`LabOptions::trace_rules`]), rounds interleaved.
//!
//! Run as root: `cargo xtask bench` (or `cargo bench --bench lab`). Optional arguments:
//! `--rounds N` multiplies the default number of rounds.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use tcplab::firewall;
use tcplab::lab::{BRIDGE, Lab, LabOptions, check_privileges};
use tcplab::spec::{HostSpec, Resolved, Topology};

fn main() {
    if let Err(e) = check_privileges() {
        eprintln!("bench: {e}");
        std::process::exit(2);
    }
    let args: Vec<String> = std::env::args().collect();
    let scale: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let article = Topology::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/topologies/article.toml"
    ))
    .expect("article.toml")
    .0;
    let hundred = hundred_clients(&article);
    println!("tcplab lab benchmark: build + teardown, median of N rounds");
    // Both tools return from teardown before the kernel has finished destroying the
    // namespaces (it does so on a worker thread). Back to back, that work overlaps the next
    // round, and hits the faster tool hardest; settled, each round starts on a quiet kernel.
    for (mode, settle) in [
        ("back to back", Duration::ZERO),
        (
            "settled (200 ms between rounds, not timed)",
            Duration::from_millis(200),
        ),
    ] {
        println!("\n{mode}");
        println!(
            "{:<28} {:>7} {:>12} {:>7} {:>12} {:>8}",
            "topology", "rounds", "tcplab", "rounds", "ip+nft", "ratio"
        );
        for (name, topo, ours, theirs) in [
            ("article (4 hosts)", &article, 50 * scale, 10 * scale),
            ("100 clients + server", &hundred, 10 * scale, 3 * scale),
        ] {
            let resolved = topo.resolve().expect("valid topology");
            let rounds = |n: usize, f: &dyn Fn(&Resolved) -> Duration| {
                let times = (0..n)
                    .map(|_| {
                        std::thread::sleep(settle);
                        f(&resolved)
                    })
                    .collect();
                median(times)
            };
            let ours_median = rounds(ours, &time_tcplab);
            let theirs_median = rounds(theirs, &time_script);
            println!(
                "{:<28} {:>7} {:>9.1} ms {:>7} {:>9.1} ms {:>7.1}x",
                name,
                ours,
                ms(ours_median),
                theirs,
                ms(theirs_median),
                theirs_median.as_secs_f64() / ours_median.as_secs_f64()
            );
        }
    }
    tracing(&article, &hundred, scale);
    vpc_lab(scale);
    big_lab(scale);
}

/// A VPC of 3 subnets of 100 hosts each, with network ACLs on every subnet and routes in
/// every route table, tcplab alone: median build + teardown.
fn vpc_lab(scale: usize) {
    let mut text = String::from(
        "[vpc]\ncidr = \"10.0.0.0/16\"\n\n[[vpc.route_table]]\nname = \"rt\"\nroutes = [\n  { destination = \"172.16.0.0/16\", target = \"blackhole\" },\n  { destination = \"172.20.0.0/16\", target = \"unreachable\" },\n  { destination = \"192.168.0.0/16\", target = \"instance:s1-h1\" },\n]\n\n[[vpc.network_acl]]\nname = \"acl\"\ninbound = [\n  { rule = 90, action = \"deny\", protocol = \"tcp\", ports = 22, cidr = \"0.0.0.0/0\" },\n  { rule = 100, action = \"allow\", protocol = \"tcp\", ports = \"1024-65535\", cidr = \"10.0.0.0/16\" },\n  { rule = 110, action = \"allow\", protocol = \"icmp\", cidr = \"10.0.0.0/16\" },\n]\noutbound = [\n  { rule = 100, action = \"allow\", protocol = \"all\", cidr = \"10.0.0.0/16\" },\n]\n",
    );
    for s in 1..=3 {
        text.push_str(&format!(
            "\n[[vpc.subnet]]\nname = \"s{s}\"\ncidr = \"10.0.{s}.0/24\"\nroute_table = \"rt\"\nnetwork_acl = \"acl\"\n"
        ));
        for h in 1..=100 {
            text.push_str(&format!(
                "\n[[host]]\nname = \"s{s}-h{h}\"\nsubnet = \"s{s}\"\n"
            ));
        }
    }
    let (_, resolved) = Topology::from_toml(&text, "vpc-bench.toml").expect("valid VPC");
    let rounds = 5 * scale;
    let times = (0..rounds)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(500));
            time_tcplab(&resolved)
        })
        .collect();
    println!(
        "\nVPC: 3 subnets x 100 hosts, network ACLs and routes, tcplab only (settled: 500 ms between rounds, not timed)"
    );
    println!("{:<28} {:>7} {:>12}", "topology", "rounds", "tcplab");
    println!(
        "{:<28} {:>7} {:>9.1} ms",
        "VPC 3 x 100 hosts",
        rounds,
        ms(median(times))
    );
}

/// Build + teardown of the same labs with the rules marking packets for tracing (the
/// default, as in the rows above) and without, rounds interleaved, settled.
fn tracing(article: &Topology, hundred: &Topology, scale: usize) {
    println!("\nrule tracing: build + teardown, settled (200 ms between rounds, not timed)");
    println!(
        "{:<28} {:>7} {:>16} {:>16} {:>8}",
        "topology", "rounds", "with tracing", "without", "ratio"
    );
    for (name, topo, rounds) in [
        ("article (4 hosts)", article, 50 * scale),
        ("100 clients + server", hundred, 10 * scale),
    ] {
        let resolved = topo.resolve().expect("valid topology");
        let mut with = Vec::new();
        let mut without = Vec::new();
        for round in 0..rounds {
            // Alternating which goes first keeps drift in the machine's load out of the ratio.
            let order = if round % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for trace_rules in order {
                std::thread::sleep(Duration::from_millis(200));
                let took = time_tcplab_with(&resolved, LabOptions { trace_rules });
                if trace_rules {
                    with.push(took);
                } else {
                    without.push(took);
                }
            }
        }
        let (with, without) = (median(with), median(without));
        println!(
            "{:<28} {:>7} {:>13.1} ms {:>13.1} ms {:>7.2}x",
            name,
            rounds,
            ms(with),
            ms(without),
            with.as_secs_f64() / without.as_secs_f64()
        );
    }
}

/// 500 hosts on a /23, tcplab alone (the script would take minutes a round): median build +
/// teardown, and the process's peak resident memory while it ran.
fn big_lab(scale: usize) {
    let mut topo = Topology::new("10.0.0.0/23".parse().expect("a subnet"));
    for i in 1..=500 {
        topo = topo.host(HostSpec::new(format!("h{i}")));
    }
    let resolved = topo.resolve().expect("valid topology");
    // The rows before would count in the peak: "5" resets it (proc(5), clear_refs).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rounds = 5 * scale;
    let times = (0..rounds)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(500));
            time_tcplab(&resolved)
        })
        .collect();
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "
500 hosts on a /23, tcplab only (settled: 500 ms between rounds, not timed)"
    );
    println!(
        "{:<28} {:>7} {:>12} {:>14}",
        "topology", "rounds", "tcplab", "peak memory"
    );
    println!(
        "{:<28} {:>7} {:>9.1} ms {:>14}{}",
        "500 hosts",
        rounds,
        ms(median(times)),
        peak,
        if reset { "" } else { " (whole run)" }
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The article's groups, with one server and 100 clients on a /24.
fn hundred_clients(article: &Topology) -> Topology {
    let mut topo = Topology::new(article.subnet);
    topo.security_groups = article.security_groups.clone();
    topo = topo.host(
        HostSpec::new("server")
            .address(Ipv4Addr::new(10, 0, 0, 58))
            .group("server-sg"),
    );
    for i in 1..=100 {
        topo = topo.host(HostSpec::new(format!("client-{i}")).group("client-sg"));
    }
    topo
}

fn time_tcplab(resolved: &Resolved) -> Duration {
    time_tcplab_with(resolved, LabOptions::default())
}

fn time_tcplab_with(resolved: &Resolved, options: LabOptions) -> Duration {
    let started = Instant::now();
    let lab = Lab::from_resolved_with(resolved.clone(), options).unwrap_or_else(|e| panic!("{e}"));
    drop(lab);
    started.elapsed()
}

/// The same lab built with one `ip`/`nft` process per step, the way a shell script does.
fn time_script(resolved: &Resolved) -> Duration {
    let prefix = format!("tcplab-bench-{}", std::process::id());
    let fabric = format!("{prefix}-fabric");
    let host_ns = |name: &str| format!("{prefix}-{name}");
    let mut steps: Vec<Vec<String>> = Vec::new();
    let mut step = |args: &[&str]| steps.push(args.iter().map(|s| s.to_string()).collect());
    step(&["ip", "netns", "add", &fabric]);
    step(&[
        "ip",
        "netns",
        "exec",
        &fabric,
        "sysctl",
        "-qw",
        "net.ipv6.conf.default.disable_ipv6=1",
    ]);
    step(&[
        "ip",
        "netns",
        "exec",
        &fabric,
        "sysctl",
        "-qw",
        "net.bridge.bridge-nf-call-iptables=1",
    ]);
    step(&["ip", "-n", &fabric, "link", "add", BRIDGE, "type", "bridge"]);
    step(&["ip", "-n", &fabric, "link", "set", BRIDGE, "up"]);
    let prefix_len = resolved.subnet.prefix_len();
    for h in &resolved.hosts {
        let ns = host_ns(&h.name);
        let cidr = format!("{}/{prefix_len}", h.address);
        step(&["ip", "netns", "add", &ns]);
        step(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        step(&[
            "ip", "-n", &fabric, "link", "add", &h.name, "type", "veth", "peer", "name", "eth0",
            "netns", &ns,
        ]);
        step(&[
            "ip", "-n", &fabric, "link", "set", &h.name, "master", BRIDGE, "up",
        ]);
        step(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        step(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        step(&["ip", "-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
    }
    let rules: String = firewall::fabric_tables(resolved, |h| h.name.clone())
        .iter()
        .map(|t| t.to_string())
        .collect();
    let mut teardown: Vec<Vec<String>> = resolved
        .hosts
        .iter()
        .map(|h| vec!["ip".into(), "netns".into(), "del".into(), host_ns(&h.name)])
        .collect();
    teardown.push(vec![
        "ip".into(),
        "netns".into(),
        "del".into(),
        fabric.clone(),
    ]);

    let started = Instant::now();
    let built = steps.iter().try_for_each(|s| run(s, None)).and_then(|()| {
        run(
            &["ip", "netns", "exec", &fabric, "nft", "-f", "-"].map(String::from),
            Some(&rules),
        )
    });
    // Teardown runs even when a step failed, so the benchmark leaves nothing behind.
    let removed: Vec<_> = teardown.iter().map(|s| run(s, None)).collect();
    let elapsed = started.elapsed();
    built.unwrap_or_else(|e| panic!("baseline script failed: {e}"));
    for r in removed {
        r.unwrap_or_else(|e| panic!("baseline teardown failed: {e}"));
    }
    elapsed
}

fn run(args: &[String], stdin: Option<&str>) -> Result<(), String> {
    use std::io::Write;
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("{args:?}: {e}"))?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
