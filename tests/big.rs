//! A big lab: 500 hosts on a /23 build, carry a ping from the first host to the last, and
//! vanish. Needs root; runs under the default file-descriptor limit (tcplab raises the soft
//! limit to the hard one itself).

mod common;

use common::{WAIT, ping, privileged};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tcplab::lab::Lab;
use tcplab::spec::{HostSpec, Topology};

const HOSTS: usize = 500;

#[test]
fn five_hundred_hosts_build_ping_and_go() {
    if !privileged() {
        return;
    }
    // The soft limit most shells give; tcplab raises it to the hard limit when it builds.
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, 1024.min(hard), hard).unwrap();
    let topology = (1..=HOSTS).fold(Topology::new("10.0.0.0/23".parse().unwrap()), |t, i| {
        t.host(HostSpec::new(format!("h{i}")))
    });
    let lab = Lab::build(&topology).unwrap_or_else(|e| panic!("cannot build 500 hosts: {e}"));
    assert_eq!(lab.hosts().len(), HOSTS);
    let first = &lab.hosts()[0];
    let last = &lab.hosts()[HOSTS - 1];
    let out = first
        .run(ping(&last.address().to_string()), WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "ping {} -> {} ({}):\n{}",
        first.name(),
        last.name(),
        last.address(),
        out.transcript()
    );
}
