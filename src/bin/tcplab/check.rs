//! `tcplab check`: what a lab needs, checked one by one on a small lab of its own.

use std::time::Duration;

use crate::CliError;
use tcplab::lab::{Lab, check_privileges, delay_line_available, netem_available};
use tcplab::spec::{Action, FirewallRule, HostSpec, Protocol, SecurityGroup, SgRule, Topology};

pub fn check() -> Result<u8, CliError> {
    let green = anstyle::Style::new().fg_color(Some(anstyle::AnsiColor::Green.into()));
    let red = anstyle::Style::new()
        .fg_color(Some(anstyle::AnsiColor::Red.into()))
        .bold();
    let mut failed = 0;
    let mut report = |what: &str, result: Result<String, String>| match result {
        Ok(detail) => println!("{green}ok  {green:#} {what}{detail}"),
        Err(e) => {
            failed += 1;
            println!("{red}FAIL{red:#} {what}: {e}");
        }
    };
    let privileged = check_privileges().map_err(|e| e.to_string());
    report(
        "privileges (CAP_NET_ADMIN, CAP_SYS_ADMIN)",
        privileged.clone().map(|()| String::new()),
    );
    if privileged.is_ok() {
        // Two hosts, a security group (br_netfilter, nf_tables, conntrack) and a rejecting
        // fabric firewall (nft_reject_netdev): everything a scenario may use.
        let topo = Topology::default()
            .host(HostSpec::new("a").group("g"))
            .host(HostSpec::new("b").group("g"))
            .security_group(
                SecurityGroup::new("g")
                    .ingress(SgRule::icmp().cidr("0.0.0.0/0".parse().expect("a CIDR"))),
            )
            .firewall(FirewallRule::new("fabric", Action::RejectTcpReset, Protocol::Tcp).port(9));
        match Lab::build(&topo) {
            Ok(lab) => {
                report(
                    "namespaces, bridge, veths, nftables security groups and firewalls, conntrack",
                    Ok(String::new()),
                );
                let captured = lab.start_captures().and_then(|r| {
                    let mut ping = std::process::Command::new("ping");
                    ping.args(["-c", "1", "-W", "2", "10.0.0.5"]);
                    let out = lab.host("a")?.run(ping, Duration::from_secs(10));
                    let traces = r.stop(None)?;
                    Ok((out, traces))
                });
                match captured {
                    Ok((out, traces)) => {
                        report(
                            "packet capture (AF_PACKET)",
                            Ok(format!(
                                ": {} packets seen",
                                traces.iter().map(|t| t.packets.len()).sum::<usize>()
                            )),
                        );
                        report(
                            "ping inside a host",
                            match out {
                                Ok(o) if o.status.success() => Ok(String::new()),
                                Ok(o) => Err(format!("ping ended with {}", o.status)),
                                Err(e) => Err(e.to_string()),
                            },
                        );
                    }
                    Err(e) => report("packet capture (AF_PACKET)", Err(e.to_string())),
                }
            }
            Err(e) => report(
                "namespaces, bridge, veths, nftables security groups and firewalls, conntrack",
                Err(e.to_string()),
            ),
        }
        // Optional: only link delays and the like need it.
        match netem_available() {
            Ok(true) => report("netem (link delay, jitter, rate...)", Ok(String::new())),
            Ok(false) => {
                println!(
                    "--   netem not in this kernel (CONFIG_NET_SCH_NETEM): delay, jitter, reorder, corrupt and rate go through tcplab's delay line in user space; duplicate cannot be done"
                );
                report(
                    "delay line in user space (NFQUEUE through nftables)",
                    delay_line_available()
                        .map(|()| String::new())
                        .map_err(|e| e.to_string()),
                );
            }
            Err(e) => report("netem (link delay, jitter, rate...)", Err(e.to_string())),
        }
    }
    for tool in ["ping", "ip", "nft", "ss", "tcpdump", "tshark", "nc"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        let needed = matches!(tool, "ping");
        match (found, needed) {
            (true, _) => report(&format!("tool `{tool}`"), Ok(String::new())),
            (false, true) => report(
                &format!("tool `{tool}`"),
                Err("not installed (Debian: iputils-ping)".into()),
            ),
            (false, false) => println!(
                "--   tool `{tool}` not installed (optional, for following the article by hand)"
            ),
        }
    }
    Ok(if failed == 0 { 0 } else { 2 })
}
